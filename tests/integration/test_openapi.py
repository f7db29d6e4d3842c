"""The API's OpenAPI description (web/openapi.json, written by hand): served at
/api/v1/openapi.json, naming exactly the routes the app has, and true to what they
answer, as schemathesis finds when it drives every operation from it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.helpers.api import bearer
from tests.helpers.doors import ApiDoor

CONFIG = schemathesis.Config.from_dict({"generation": {"deterministic": True}})
# The app and its rolled-back database serve every example of one operation.
SETTINGS = settings(
    max_examples=8,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_the_description_is_served_without_a_token(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.json["openapi"] == "3.1.0"
    assert response.json["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_it_describes_every_route_of_the_api_and_no_other(client: FlaskClient, app: Any) -> None:
    described = {
        (method.upper(), path)
        for path, item in client.get("/api/v1/openapi.json").json["paths"].items()
        for method in item
    }
    routed = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1")))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert described == routed


def test_every_error_answer_has_the_error_shape(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    error_refs = {
        code: answer
        for item in spec["paths"].values()
        for operation in item.values()
        for code, answer in operation["responses"].items()
        if int(code) >= 400
    }
    assert error_refs
    for answer in error_refs.values():
        named = spec["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        assert named["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    assert spec["components"]["schemas"]["Error"]["required"] == ["error", "message", "details"]


SPEC = json.loads((Path(__file__).resolve().parents[2] / "web" / "openapi.json").read_text())
OPERATIONS = [
    (method.upper(), path, mode)
    for path, item in SPEC["paths"].items()
    for method, operation in item.items()
    # Negative cases need something to get wrong: parameters or a body.
    for mode in (
        [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        if operation.get("parameters") or operation.get("requestBody")
        else [GenerationMode.POSITIVE]
    )
]


@pytest.fixture
def api_schema(app: Any) -> Any:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=CONFIG)


# The description holds whatever the database: conformance is checked on SQLite; the
# fuzz test (test_api_fuzz) throws its inputs at PostgreSQL too, where text and integer
# limits differ.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("method", "path", "mode"), OPERATIONS, ids=[f"{m} {p} {g.value}" for m, p, g in OPERATIONS]
)
def test_the_api_answers_as_described(
    api_schema: Any, client: FlaskClient, app: Any, method: str, path: str, mode: GenerationMode
) -> None:
    """Schemathesis' cases for one operation, valid (positive) or not (negative), sent
    as the administrator (every role): no 5xx, and every answer's status, content type
    and body as the description says."""
    operation = api_schema[path][method]
    headers = bearer(client, "admin")
    # Ids drawn at random name nothing; half the cases use an instance and a task that exist.
    door = ApiDoor(client, app)
    instance = door.start("owner")
    real = {"instance_id": instance, "task_id": door.tasks("owner", instance)[0]["id"]}
    named = {p.name for p in operation.path_parameters}
    strategy = operation.as_strategy(generation_mode=mode)
    if named and mode is GenerationMode.POSITIVE:
        fixed = {k: v for k, v in real.items() if k in named}
        strategy = strategy | operation.as_strategy(generation_mode=mode, path_parameters=fixed)

    @SETTINGS
    @given(case=strategy)
    def send(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    send()
