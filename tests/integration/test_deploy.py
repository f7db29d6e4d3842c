"""Deploying diagrams: bad input gets a clear 422 with element ids and changes nothing;
good input becomes a new version, the same content the same version."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from engine.persistence.database import Database
from engine.persistence.models import ProcessDefinition
from tests.helpers.api import bearer

BPMN = (Path(__file__).resolve().parents[2] / "bpmn" / "service_improvement.bpmn").read_text()

BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol2;</bpmn:definitions>"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&xxe;</bpmn:definitions>"""


def definitions(db: Database) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(ProcessDefinition)) or 0


def nested_in_the_diagram(levels: int) -> str:
    extension = "<a>" * levels + "</a>" * levels
    return BPMN.replace(
        "</bpmn:definitions>",
        f"<bpmn:extensionElements>{extension}</bpmn:extensionElements></bpmn:definitions>",
    )


def declaring(encoding: str) -> str:
    return BPMN.replace('encoding="UTF-8"', f'encoding="{encoding}"', 1)


def without_start_event(xml: str) -> str:
    start = xml.index("<bpmn:startEvent")
    end = xml.index("</bpmn:startEvent>") + len("</bpmn:startEvent>")
    return xml[:start] + xml[end:]


@pytest.mark.parametrize(
    ("body", "element", "reason"),
    [
        ("this is not xml", "diagram.bpmn", "not well-formed"),
        (declaring("UTF-16").encode("utf-16"), "diagram.bpmn", "encoded in UTF-8"),
        (declaring("ISO-8859-1").encode("utf-8"), "diagram.bpmn", "encoded in UTF-8"),
        (
            declaring("ISO-8859-1").replace("发起服务改进", "café").encode("latin-1", "replace"),
            "diagram.bpmn",
            "encoded in UTF-8",
        ),
        (BPMN.encode("utf-8").replace("服务".encode(), b"\xff\xfe", 1), "diagram.bpmn", "UTF-8"),
        (nested_in_the_diagram(300), "diagram.bpmn", "not well-formed"),
        (nested_in_the_diagram(100), "diagram.bpmn", "nests more than 64 levels"),
        (BOMB, "diagram.bpmn", "DTDs or entities"),
        (EXTERNAL, "diagram.bpmn", "DTDs or entities"),
        ('<?xml version="1.0"?><root/>', "diagram.bpmn", "not a BPMN 2.0 file"),
        (
            BPMN.replace('name="服务改进经理"', 'name="财务部"'),
            "ImprovementManager",
            "not a known role",
        ),
        (
            BPMN.replace('id="csi/compute_gaps"', 'id="csi/rm_rf"'),
            "compute_gaps",
            "unknown service",
        ),
        (
            BPMN.replace("decision == 'reject'", "__import__('os').system('id')"),
            "Flow_gw_review_to_gw_plan",
            "only these functions",
        ),
        (
            BPMN.replace("phase = 'monitoring'", "phase = open('/etc/passwd')"),
            "open_monitoring",
            "only these functions",
        ),
        (without_start_event(BPMN), "service_improvement", "no start event"),
        # literal durations, dates and cardinalities are checked by the rules they run by
        (
            BPMN.replace('value="P5D"', 'value="P9999Y"', 1),
            "propose_metrics",
            "due_in is longer than 5 years",
        ),
        (
            BPMN.replace('value="P5D"', 'value="5 days"', 1),
            "propose_metrics",
            "due_in is not an ISO 8601 duration",
        ),
        (
            BPMN.replace(">recheck_after</bpmn:timeDuration>", '>"P1000000Y"</bpmn:timeDuration>'),
            "wait_recheck",
            "the duration is longer than 5 years",
        ),
        (
            BPMN.replace(
                '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">recheck_after</bpmn:timeDuration>',
                '<bpmn:timeDate xsi:type="bpmn:tFormalExpression">"next week"</bpmn:timeDate>',
            ),
            "wait_recheck",
            "ISO 8601 date and time",
        ),
        (
            BPMN.replace(
                '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">recheck_after</bpmn:timeDuration>',
                '<bpmn:timeCycle xsi:type="bpmn:tFormalExpression">"R/P99999999999Y"</bpmn:timeCycle>',
            ),
            "wait_recheck",
            "cycle timers are not supported",
        ),
        (
            BPMN.replace(
                "<bpmn:loopDataInputRef>process_owners</bpmn:loopDataInputRef>",
                "<bpmn:loopCardinality>10000</bpmn:loopCardinality>",
            ),
            "propose_metrics",
            "at most 100 instances",
        ),
        (
            BPMN.replace(
                '<spiffworkflow:property name="record_prefix" value="SI" />',
                '<spiffworkflow:property name="record_prefix" value="SI" />'
                '<spiffworkflow:property name="start_form" value="no_such_form" />',
            ),
            "service_improvement",
            "start_form 'no_such_form' is no form",
        ),
    ],
)
def test_bad_diagrams_are_refused_with_reasons(
    client: FlaskClient, db: Database, body: str | bytes, element: str, reason: str
) -> None:
    before = definitions(db)
    response = client.post(
        "/api/v1/models",
        data=body.encode("utf-8") if isinstance(body, str) else body,
        headers={**bearer(client, "admin"), "Content-Type": "application/xml"},
    )
    assert response.status_code == 422, response.json
    payload: dict[str, Any] = response.json
    assert payload["error"] == "invalid"
    text = payload["message"] + " " + " ".join(" ".join(v) for v in payload["details"].values())
    assert reason in text, payload
    assert any(element in key for key in payload["details"]), payload["details"]
    assert definitions(db) == before


def test_deploy_versions_by_content(client: FlaskClient, db: Database) -> None:
    headers = bearer(client, "admin")
    upload = {"file": (io.BytesIO(BPMN.encode()), "service_improvement.bpmn")}
    same = client.post("/api/v1/models", data=upload, headers=headers)
    assert same.status_code == 200
    assert same.json["created"] is False
    assert same.json["definitions"][0]["version"] == 1
    changed = BPMN.replace("发起服务改进", "发起改进")
    response = client.post(
        "/api/v1/models",
        data=changed.encode(),
        headers={**headers, "Content-Type": "application/xml"},
    )
    assert response.status_code == 201
    assert response.json["created"] is True
    assert response.json["definitions"][0]["version"] == 2
    assert (
        client.post(
            "/api/v1/models", data=changed.encode(), headers=bearer(client, "owner")
        ).status_code
        == 403
    )


@pytest.mark.parametrize("name", ["d" * 201 + ".bpmn", "a\x00.bpmn"])
def test_a_file_name_that_cannot_be_stored_is_422(
    client: FlaskClient, db: Database, name: str
) -> None:
    before = definitions(db)
    changed = BPMN.replace("发起服务改进", "发起改进").encode()
    upload = {"file": (io.BytesIO(changed), name)}
    response = client.post("/api/v1/models", data=upload, headers=bearer(client, "admin"))
    assert response.status_code == 422
    assert response.json["details"] == {"filename": ["too long or not storable"]}
    assert definitions(db) == before
