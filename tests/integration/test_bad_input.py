"""Hostile and careless input: every kind answers a clear 4xx (JSON under /api), changes
nothing, and no request makes the server read, store or echo more than its bounds."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from engine.access import Actor
from engine.errors import ValidationFailed
from engine.forms.options import OptionSource
from engine.forms.validation import validate_submission
from engine.inputs import MAX_DEPTH, storable
from engine.persistence.database import Database
from engine.persistence.models import Event, Instance
from engine.runtime import Runtime
from engine.settings import DEFAULT_MAX_REQUEST_BYTES
from tests.cycle import REGISTER, Driver
from tests.helpers.doors import ApiDoor
from tests.helpers.pages import client_for, csrf_token

HUGE_IDS = [2**31, 2**63]


@pytest.fixture
def api(client: FlaskClient, app: Any) -> ApiDoor:
    return ApiDoor(client, app)


def counts(db: Database) -> tuple[int, int]:
    """Instances and events: what a refused request must leave as it was."""
    with db.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Instance)) or 0,
            session.scalar(select(func.count()).select_from(Event)) or 0,
        )


def post_json(client: FlaskClient, url: str, body: str | bytes, headers: Any = None) -> Any:
    return client.post(url, data=body, content_type="application/json", headers=headers or {})


def assert_json_error(response: Any, status: int, error: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    body: dict[str, Any] = response.json
    assert set(body) == {"error", "message", "details"}
    if error is not None:
        assert body["error"] == error
    return body


# -- request size -------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_before_it_is_read(
    api: ApiDoor, client: FlaskClient, db: Database
) -> None:
    before = counts(db)
    big = json.dumps({"data": {"description": "x" * DEFAULT_MAX_REQUEST_BYTES}})
    response = post_json(client, "/api/v1/instances", big, api.headers("owner"))
    assert_json_error(response, 413, "request_entity_too_large")
    assert len(response.data) < 1000
    assert counts(db) == before


def test_a_page_form_over_the_limit_is_413(client: FlaskClient) -> None:
    response = client.post("/login", data={"username": "x" * DEFAULT_MAX_REQUEST_BYTES})
    assert response.status_code == 413


# -- start data: the start form's fields, within its bounds -------------------------------------


def test_start_data_outside_the_start_form_is_refused_naming_the_keys(
    api: ApiDoor, client: FlaskClient, db: Database
) -> None:
    before = counts(db)
    response = client.post(
        "/api/v1/instances",
        json={"data": {**REGISTER, "payload": "x" * 1000, "gaps": []}},
        headers=api.headers("owner"),
    )
    body = assert_json_error(response, 422, "invalid")
    assert body["details"] == {"data/gaps": ["unknown field"], "data/payload": ["unknown field"]}
    assert counts(db) == before


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"description": "x" * 4001}, "data/description", "at most 4000 characters"),
        ({"reference": "x" * 1_000_000}, "data/reference", "at most 200 characters"),
        (
            {"process_owners": [f"u{i}" for i in range(51)]},
            "data/process_owners",
            "at most 50 items",
        ),
        ({"process_owners": ["x" * 65]}, "data/process_owners/0", "at most 64 characters"),
        ({"source": "gossip"}, "data/source", "not one of the allowed values"),
        ({"reference": 5}, "data/reference", "must be of type string"),
    ],
)
def test_start_data_is_held_to_the_start_forms_rules(
    api: ApiDoor, client: FlaskClient, db: Database, data: dict[str, Any], path: str, message: str
) -> None:
    before = counts(db)
    response = client.post("/api/v1/instances", json={"data": data}, headers=api.headers("owner"))
    body = assert_json_error(response, 422, "invalid")
    assert body["details"] == {path: [message]}
    assert "xxxxxxxx" not in response.get_data(as_text=True)
    assert counts(db) == before


def test_part_of_the_start_form_is_enough_to_start(api: ApiDoor, client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/instances",
        json={"data": {"reference": "KF-1", "process_owners": ["po1"]}},
        headers=api.headers("owner"),
    )
    assert response.status_code == 201, response.json


def test_the_next_cycle_carries_more_than_the_start_form_and_the_api_may_not(
    api: ApiDoor, client: FlaskClient, rt: Runtime, actors: dict[str, Actor]
) -> None:
    """The pack's successor rule seeds metrics, targets and the previous instance: the
    engine's own data, not checked against the form a person fills. The same seed sent
    by a person is refused."""
    first = Driver(api).run(next_cycle=True).instance_id
    successor = next(
        t.instance_id
        for t in rt.queries.inbox(actors["owner"])
        if t.bpmn_id == "register_input" and t.instance_id != first
    )
    seeded = api.instance(successor)["data"]
    assert seeded["previous_instance"] == first
    assert [m["code"] for m in seeded["metrics"]] == ["AVAIL", "MTTR"]
    assert seeded["source"] == "periodic_review"
    same = {k: seeded[k] for k in ("source", "metrics", "targets", "previous_instance")}
    refused = client.post("/api/v1/instances", json={"data": same}, headers=api.headers("owner"))
    body = assert_json_error(refused, 422, "invalid")
    assert set(body["details"]) == {"data/metrics", "data/targets", "data/previous_instance"}


def test_ten_thousand_measures_are_refused_by_the_form_at_once(rt: Runtime) -> None:
    measure = {"title": "t", "description": "d", "responsible": "po1", "due_date": "2026-01-01"}
    form = rt.forms.get("record_improvement")
    with pytest.raises(ValidationFailed) as refused:
        validate_submission(
            form, OptionSource(users=lambda role: [], data={}), {"measures": [measure] * 10_000}
        )
    assert ("measures", "maxItems") in {(e.path, e.code) for e in refused.value.errors}


# -- reserved names ------------------------------------------------------------------------------


def test_start_data_may_not_shadow_the_engines_names(
    api: ApiDoor, client: FlaskClient, db: Database
) -> None:
    before = counts(db)
    response = client.post(
        "/api/v1/instances",
        json={"data": {"sorted": 1, "set": 2, "_private": 3, "class": 4}},
        headers=api.headers("owner"),
    )
    body = assert_json_error(response, 422, "invalid")
    assert body["details"] == {
        f"data/{k}": ["reserved or not a name"] for k in ("_private", "class", "set", "sorted")
    }
    assert counts(db) == before


# -- malformed JSON ------------------------------------------------------------------------------


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/instances", '{"data": {"reference": "\\udfff"}}'),
        ("/api/v1/instances", '{"process": "\\ud800service_improvement"}'),
        ("/api/v1/instances", '{"data": {"\\udfff": 1}}'),
        ("/api/v1/instances", nested(10_000)),
        ("/api/v1/instances", '{"data": {"reference": ' + nested(900) + "}}"),
        ("/api/v1/instances", '{"data": {"reference": ' + nested(MAX_DEPTH) + "}}"),
        ("/api/v1/instances", '{"data": {"reference": 1' + "0" * 5000 + "}}"),
        ("/api/v1/instances", '{"process": ["x"]}'),
        ("/api/v1/instances", '{"process": {"a": 1}}'),
        ("/api/v1/instances", '{"data": [1]}'),
        ("/api/v1/instances", "[1]"),
        ("/api/v1/instances", b'{"data": {"reference": "\xff"}}'),
        ("/api/v1/auth/token", "[1]"),
        ("/api/v1/auth/token", '{"username": ["owner"], "password": "demo"}'),
        ("/api/v1/auth/token", '{"username": "owner\\u0000", "password": "demo"}'),
        ("/api/v1/auth/token", '{"username": "\\udfff", "password": "demo"}'),
        ("/api/v1/auth/token", nested(10_000)),
    ],
)
def test_malformed_json_is_422(
    api: ApiDoor, client: FlaskClient, db: Database, url: str, body: str | bytes
) -> None:
    before = counts(db)
    response = post_json(client, url, body, api.headers("owner"))
    assert_json_error(response, 422, "invalid")
    assert counts(db) == before


@pytest.mark.parametrize(
    "data",
    [
        '{"data": {"description": "\\udfff"}}',
        '{"data": {"description": "a\\u0000b"}}',
        '{"data": {"description": ' + nested(10_000) + "}}",
        '{"data": {"process_owners": ' + nested(900, '"po1"') + "}}",
    ],
)
def test_a_completion_with_malformed_json_is_422_and_the_task_stays(
    api: ApiDoor, client: FlaskClient, db: Database, data: str
) -> None:
    iid = api.start("owner")
    task = api.tasks("owner", iid)[0]
    before = counts(db)
    response = post_json(client, f"/api/v1/tasks/{task['id']}/complete", data, api.headers("owner"))
    assert_json_error(response, 422, "invalid")
    assert counts(db) == before
    assert [t["id"] for t in api.tasks("owner", iid)] == [task["id"]]


def test_a_refusal_never_echoes_the_value(api: ApiDoor, client: FlaskClient) -> None:
    iid = api.start("owner")
    task = api.tasks("owner", iid)[0]
    value = "ECHO" * 250_000  # 1 MB
    oversized = client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"data": {**REGISTER, "description": value}},
        headers=api.headers("owner"),
    )
    body = assert_json_error(oversized, 422, "invalid")
    assert body["details"] == {"description": ["at most 4000 characters"]}
    assert "ECHO" not in oversized.get_data(as_text=True)
    wrong = client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"data": {**REGISTER, "source": "ECHO", "reference": ["ECHO"], "ECHO": 1}},
        headers=api.headers("owner"),
    )
    body = assert_json_error(wrong, 422, "invalid")
    assert body["details"] == {
        "ECHO": ["unknown field"],  # a key is named, never a value
        "reference": ["must be of type string"],
        "source": ["not one of the allowed values"],
    }


# -- ids beyond what the database holds ----------------------------------------------------------


@pytest.mark.parametrize("number", HUGE_IDS)
@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("GET", "/api/v1/instances/{n}", 404),
        ("GET", "/api/v1/instances/{n}/history", 404),
        ("GET", "/api/v1/instances/{n}/verify", 404),
        ("GET", "/api/v1/instances/{n}/replay", 404),
        ("POST", "/api/v1/instances/{n}/migrate", 404),
        ("GET", "/api/v1/tasks?instance={n}", 422),
        ("GET", "/api/v1/instances/{iid}/replay?step={n}", 422),
    ],
)
def test_huge_ids_in_api_paths_and_queries_are_4xx(
    api: ApiDoor, client: FlaskClient, method: str, url: str, status: int, number: int
) -> None:
    iid = api.start("owner")
    response = client.open(
        url.format(n=number, iid=iid), method=method, headers=api.headers("admin")
    )
    assert_json_error(response, status)


@pytest.mark.parametrize("number", HUGE_IDS)
def test_a_huge_version_to_migrate_to_is_422(
    api: ApiDoor, client: FlaskClient, db: Database, number: int
) -> None:
    iid = api.start("owner")
    before = counts(db)
    response = client.post(
        f"/api/v1/instances/{iid}/migrate", json={"version": number}, headers=api.headers("admin")
    )
    assert assert_json_error(response, 422, "invalid")["details"] == {"version": ["not a version"]}
    assert counts(db) == before


@pytest.mark.parametrize("number", HUGE_IDS)
@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/instances/{n}", 404),
        ("/instances/{n}/diagram.bpmn", 404),
        ("/instances/{iid}/diagram.bpmn?definition={n}", 422),
        ("/audit/instances/{n}", 404),
        ("/audit/instances/{iid}?step={n}", 422),
        ("/audit/instances/{iid}/steps/{n}", 404),
        ("/audit/instances/{n}/history.json", 404),
        ("/audit?number={n}", 200),
        ("/audit?number=%23{n}", 200),
    ],
)
def test_huge_ids_in_pages_are_4xx(
    api: ApiDoor, app: Any, url: str, status: int, number: int
) -> None:
    iid = api.start("owner")
    admin = client_for(app, "admin")
    response = admin.get(url.format(n=number, iid=iid))
    assert response.status_code == status


@pytest.mark.parametrize("number", HUGE_IDS)
def test_a_huge_version_on_the_migrate_form_is_422(
    api: ApiDoor, app: Any, db: Database, number: int
) -> None:
    iid = api.start("owner")
    admin = client_for(app, "admin")
    before = counts(db)
    response = admin.post(
        f"/instances/{iid}/migrate",
        data={"version": str(number), "csrf_token": csrf_token(admin, f"/instances/{iid}")},
    )
    assert response.status_code == 422
    assert counts(db) == before


# -- NUL and lone surrogates outside JSON --------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/metrics?code=AV%00AIL",
        "/api/v1/tasks/00000000-0000-0000-0000-00000000000%00",
        "/api/v1/tasks?instance=1%00",
        "/api/v1/improvements?x%00=1",
    ],
)
def test_nul_in_an_api_path_or_query_is_422(api: ApiDoor, client: FlaskClient, url: str) -> None:
    assert_json_error(client.get(url, headers=api.headers("owner")), 422, "invalid")


@pytest.mark.parametrize(
    "url", ["/audit?person=o%00wner", "/audit?number=SI%00", "/instances?status=running%00"]
)
def test_nul_in_a_page_query_is_422(app: Any, url: str) -> None:
    assert client_for(app, "admin").get(url).status_code == 422


def test_nul_in_a_login_name_is_422(client: FlaskClient) -> None:
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"username": "owner\x00", "password": "demo", "csrf_token": token}
    )
    assert response.status_code == 422


def test_nul_in_a_form_field_is_422_and_the_task_stays(
    api: ApiDoor, app: Any, db: Database
) -> None:
    iid = api.start("owner")
    task = api.tasks("owner", iid)[0]
    owner = client_for(app, "owner")
    before = counts(db)
    response = owner.post(
        f"/tasks/{task['id']}",
        data={
            **{k: v for k, v in REGISTER.items() if k != "process_owners"},
            "process_owners": ["po1"],
            "description": "a\x00b",
            "csrf_token": csrf_token(owner, f"/tasks/{task['id']}"),
        },
    )
    assert response.status_code == 422
    assert counts(db) == before


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_form_post_carrying_the_bytes_of_a_lone_surrogate_is_no_server_error(
    api: ApiDoor, app: Any, content_type: str
) -> None:
    """A form cannot carry a lone surrogate itself: its UTF-8-like bytes (ED BF BF) are
    no UTF-8, and they arrive as text every store keeps."""
    iid = api.start("owner")
    task = api.tasks("owner", iid)[0]
    owner = client_for(app, "owner")
    token = csrf_token(owner, f"/tasks/{task['id']}")
    fields = {"source": "customer_feedback", "process_owners": "po1", "csrf_token": token}
    surrogate_bytes = b"\xed\xbf\xbf"
    if content_type == "multipart/form-data":
        parts = [(k, v.encode()) for k, v in fields.items()] + [("description", surrogate_bytes)]
        body = b"".join(
            b'--b\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k.encode(), v)
            for k, v in parts
        )
        content_type += "; boundary=b"
        body += b"--b--\r\n"
    else:
        body = ("&".join(f"{k}={v}" for k, v in fields.items()) + "&description=").encode()
        body += quote_from_bytes(surrogate_bytes).encode()
    response = owner.post(f"/tasks/{task['id']}", data=body, content_type=content_type)
    assert response.status_code == 302
    assert storable(api.instance(iid)["data"]["description"])


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_an_id_past_the_database_bound_is_no_resource_whatever_the_method(
    client: FlaskClient, method: str
) -> None:
    """No route takes the id, so nothing is there: 404, not 405 (which would claim
    that another method could reach it)."""
    response = client.open("/api/v1/drafts/185877976894224576", method=method, json={})
    assert response.status_code == 404
    assert response.json["error"] == "not_found"
    # A method the resource lacks is still 405.
    assert client.open("/api/v1/instances/1", method=method, json={}).status_code == 405
