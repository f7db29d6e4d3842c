"""The JSON API of DESIGN section 7: the full cycle and every status code it promises."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from engine.audit import chain
from engine.persistence.database import Database
from engine.persistence.models import Event, HumanTask, User
from engine.runtime import Runtime
from tests.cycle import REGISTER, Driver
from tests.helpers.actors import actors_of
from tests.helpers.api import bearer
from tests.helpers.databases import POSTGRES
from tests.helpers.doors import ApiDoor


@pytest.fixture
def api(client: FlaskClient, app: Any) -> ApiDoor:
    return ApiDoor(client, app)


def events_of(db: Database, instance_id: int) -> int:
    with db.sessions() as session:
        return (
            session.scalar(
                select(func.count()).select_from(Event).where(Event.instance_id == instance_id)
            )
            or 0
        )


def test_full_cycle_through_the_api(api: ApiDoor, client: FlaskClient, db: Database) -> None:
    result = Driver(api).run()
    assert result.final["status"] == "completed"
    assert result.review_comment_seen == "请补充回退方案"
    iid = result.instance_id
    history_rows = client.get(
        f"/api/v1/instances/{iid}/history", headers=api.headers("auditor")
    ).json
    assert [e["seq"] for e in history_rows] == list(range(1, len(history_rows) + 1))
    assert {"seq", "type", "actor", "at", "payload", "prev_hash", "hash"} <= set(history_rows[0])
    verify = client.get(f"/api/v1/instances/{iid}/verify", headers=api.headers("auditor")).json
    assert verify == {
        "ok": True,
        "broken_at": None,
        "message": f"{len(history_rows)} events verified",
        "state_at": None,
    }
    register = client.get("/api/v1/improvements", headers=api.headers("auditor")).json
    assert register[0]["instance_id"] == iid
    assert register[0]["status"] == "closed"
    assert register[0]["number"].startswith("SI-")
    readings = client.get("/api/v1/metrics?code=AVAIL", headers=api.headers("auditor")).json
    assert [r["value"] for r in readings][-3:] == [99.3, 99.6, 99.95]


def test_start_with_initial_data_prefills_the_first_form(api: ApiDoor, client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/instances",
        json={"process": "service_improvement", "data": REGISTER},
        headers=api.headers("owner"),
    )
    assert response.status_code == 201
    task = api.tasks("owner", response.json["id"])[0]
    detail = client.get(f"/api/v1/tasks/{task['id']}", headers=api.headers("owner")).json
    assert detail["bpmn_id"] == "register_input"
    assert detail["lane"] == "ImprovementOwner"
    assert detail["data"]["reference"] == REGISTER["reference"]
    # every holder of the ProcessOwner role (admin holds all roles)
    assert set(detail["schema"]["properties"]["process_owners"]["items"]["enum"]) == {
        "po1",
        "po2",
        "admin",
    }


def test_auth_errors(client: FlaskClient) -> None:
    assert client.get("/api/v1/tasks").status_code == 401
    assert (
        client.get("/api/v1/tasks", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    )
    bad = client.post("/api/v1/auth/token", json={"username": "owner", "password": "wrong"})
    assert bad.status_code == 401
    assert bad.json["error"] == "unauthorized"


def test_invalid_data_is_422_and_changes_nothing(
    api: ApiDoor, client: FlaskClient, db: Database
) -> None:
    iid = api.start("owner")
    task = api.tasks("owner", iid)[0]
    before = events_of(db, iid)
    response = client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"data": {"source": "gossip", "process_owners": [], "description": ""}},
        headers=api.headers("owner"),
    )
    assert response.status_code == 422
    body = response.json
    assert body["error"] == "invalid"
    assert {"source", "process_owners", "description"} <= set(body["details"])
    assert events_of(db, iid) == before
    assert [t["id"] for t in api.tasks("owner", iid)] == [task["id"]]
    # an unknown process owner is refused too: the option list is enforced server-side
    response = client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"data": {**REGISTER, "process_owners": ["po1", "mallory"]}},
        headers=api.headers("owner"),
    )
    assert response.status_code == 422
    assert "process_owners/1" in response.json["details"]
    assert events_of(db, iid) == before


def test_wrong_role_wrong_assignee_and_auditor_are_403(api: ApiDoor, client: FlaskClient) -> None:
    iid = api.start("owner")
    task = api.tasks("owner", iid)[0]
    for user in ("po1", "auditor", "cab"):
        response = client.post(
            f"/api/v1/tasks/{task['id']}/complete",
            json={"data": REGISTER},
            headers=api.headers(user),
        )
        assert response.status_code == 403, user
        assert (
            client.post(f"/api/v1/tasks/{task['id']}/claim", headers=api.headers(user)).status_code
            == 403
        )
    assert (
        client.post("/api/v1/instances", json={}, headers=api.headers("auditor")).status_code == 403
    )
    # Only the start event's lane (服务改进负责人) or an administrator starts an improvement.
    refused = client.post("/api/v1/instances", json={}, headers=api.headers("po1"))
    assert refused.status_code == 403
    assert "ImprovementOwner" in refused.json["message"]
    assert (
        client.post("/api/v1/instances", json={}, headers=api.headers("admin")).status_code == 201
    )
    api.complete("owner", task["id"], REGISTER)
    po1_task = next(t for t in api.tasks("po1", iid) if t["bpmn_id"] == "propose_metrics")
    assert po1_task["assignee"] == "po1"
    response = client.post(
        f"/api/v1/tasks/{po1_task['id']}/complete",
        json={"data": {"metrics": [{"name": "x", "method": "y"}]}},
        headers=api.headers("po2"),
    )
    assert response.status_code == 403
    assert "po1" in response.json["message"]


def test_a_body_that_is_not_json_is_422_and_starts_nothing(
    api: ApiDoor, client: FlaskClient, db: Database
) -> None:
    from engine.persistence.models import Instance

    with db.sessions() as session:
        before = session.scalar(select(func.count()).select_from(Instance))
    response = client.post(
        "/api/v1/instances",
        data="[1,2",
        content_type="application/json",
        headers=api.headers("owner"),
    )
    assert response.status_code == 422
    assert response.json["error"] == "invalid"
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == before


def test_finished_task_is_409_and_claims_conflict(api: ApiDoor, client: FlaskClient) -> None:
    iid = api.start("owner")
    task = api.tasks("owner", iid)[0]
    api.complete("owner", task["id"], REGISTER)
    again = client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"data": REGISTER},
        headers=api.headers("owner"),
    )
    assert again.status_code == 409
    assert again.json["error"] == "conflict"
    # claims: admin holds every role, so it competes with owner for owner's tasks
    nxt = api.start("owner")
    first = api.tasks("owner", nxt)[0]
    assert (
        client.post(f"/api/v1/tasks/{first['id']}/claim", headers=api.headers("admin")).status_code
        == 200
    )
    assert (
        client.post(f"/api/v1/tasks/{first['id']}/claim", headers=api.headers("owner")).status_code
        == 409
    )
    done = client.post(
        f"/api/v1/tasks/{first['id']}/complete",
        json={"data": REGISTER},
        headers=api.headers("owner"),
    )
    assert done.status_code == 409
    assert (
        client.post(
            f"/api/v1/tasks/{first['id']}/unclaim", headers=api.headers("admin")
        ).status_code
        == 200
    )
    assert (
        client.post(f"/api/v1/tasks/{first['id']}/claim", headers=api.headers("owner")).status_code
        == 200
    )


def test_unknown_things_are_404(api: ApiDoor, client: FlaskClient) -> None:
    headers = api.headers("owner")
    assert (
        client.get(
            "/api/v1/tasks/00000000-0000-0000-0000-000000000000", headers=headers
        ).status_code
        == 404
    )
    assert client.get("/api/v1/tasks/not-a-uuid", headers=headers).status_code == 404
    assert client.get("/api/v1/instances/999999", headers=headers).status_code == 404
    missing = client.post("/api/v1/instances", json={"process": "no_such_process"}, headers=headers)
    assert missing.status_code == 404
    assert missing.json["error"] == "not_found"
    assert client.get("/api/v1/nothing-here", headers=headers).json["error"] == "not_found"


@pytest.mark.parametrize("backend", [POSTGRES], indirect=True)
def test_concurrent_completion_exactly_one_wins(committed_db: Database) -> None:
    """Two threads complete the same task at once: one 200, one 409, one event."""
    from web import create_app

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "t",
            "DATABASE": committed_db,
            "DATABASE_URL": committed_db.url,
        }
    )
    rt: Runtime = app.extensions["csi"].runtime
    owner = actors_of(committed_db)["owner"]
    for _round in range(3):
        iid = rt.start_instance(owner).instance_id
        with committed_db.sessions() as session:
            task_id = session.scalar(select(HumanTask.id).where(HumanTask.instance_id == iid))
        barrier = threading.Barrier(2)
        codes: list[int] = []

        def attempt(
            task_id: str = task_id, barrier: threading.Barrier = barrier, codes: list[int] = codes
        ) -> None:
            client = app.test_client()
            headers = bearer(client, "owner")
            barrier.wait()
            response = client.post(
                f"/api/v1/tasks/{task_id}/complete", json={"data": REGISTER}, headers=headers
            )
            codes.append(response.status_code)

        threads = [threading.Thread(target=attempt) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(codes) == [200, 409]
        with committed_db.sessions() as session:
            completions = session.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.instance_id == iid, Event.type == "task_completed")
            )
            assert completions == 1
            assert chain.verify(session, iid).ok
            open_tasks = session.scalars(
                select(HumanTask.bpmn_id).where(
                    HumanTask.instance_id == iid, HumanTask.status == "open"
                )
            ).all()
            assert sorted(open_tasks) == ["propose_metrics", "propose_metrics"]


def test_metric_readings_follow_who_may_read_the_instance_that_reported_them(
    api: ApiDoor, client: FlaskClient, db: Database
) -> None:
    """A reading an improvement reported is read by those who may read the improvement:
    its participants and those who read every instance; another process owner sees none."""
    iid = Driver(api).run().instance_id
    with db.transaction() as session:
        session.add(
            User(
                username="po9",
                display_name="po9",
                password_hash=session.scalar(
                    select(User.password_hash).where(User.username == "po1")
                ),
                roles=["ProcessOwner"],
                active=True,
            )
        )

    def readings(username: str) -> list[dict[str, Any]]:
        response = client.get("/api/v1/metrics?code=AVAIL", headers=bearer(client, username))
        assert response.status_code == 200
        return [r for r in response.json if r["instance_id"] == iid]

    assert len(readings("auditor")) == 3  # three rounds of data collection
    assert len(readings("po1")) == 3  # took part: reported them
    assert readings("po9") == []
