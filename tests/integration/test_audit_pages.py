"""The audit console through the Flask test client: search, integrity panel, steps, export."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from sqlalchemy import select, update

from engine.access import Actor
from engine.persistence.database import Database
from engine.persistence.models import Event, Record
from engine.runtime import Runtime
from tests.cycle import METRICS, REGISTER, Driver
from tests.helpers import html
from tests.helpers.doors import RuntimeDoor
from tests.helpers.pages import client_for


@pytest.fixture
def improvement(rt: Runtime, db: Database, actors: dict[str, Actor]) -> dict[str, Any]:
    """An improvement part-way: registered, metrics proposed by both owners, defined."""
    door = RuntimeDoor(rt, db, actors)
    driver = Driver(door)
    iid = door.start("owner")
    driver.do("owner", iid, "register_input", REGISTER)
    for owner, name, unit, direction in (
        ("po1", "可用率", "%", "higher_better"),
        ("po2", "MTTR", "h", "lower_better"),
    ):
        proposal = {"name": name, "unit": unit, "direction": direction, "method": "统计"}
        driver.do(owner, iid, "propose_metrics", {"metrics": [proposal]})
    driver.do("owner", iid, "define_metrics", {"metrics": METRICS})
    with db.sessions() as session:
        number = session.scalar(select(Record.number).where(Record.instance_id == iid))
        events = list(
            session.scalars(select(Event).where(Event.instance_id == iid).order_by(Event.seq))
        )
        registered = next(
            e.seq for e in events if e.type == "task_completed" and e.bpmn_id == "register_input"
        )
        return {"id": iid, "number": number, "events": len(events), "registered": registered}


@pytest.fixture
def auditor(app: Any) -> Any:
    return client_for(app, "auditor")


def test_search_by_record_number_finds_it(auditor: Any, improvement: dict[str, Any]) -> None:
    number = improvement["number"]
    response = auditor.get(f"/audit?number={number.lower()}")
    doc = html.page(response)
    assert response.status_code == 200
    link = html.select_one(
        doc, f'table.audit-results a.record-no[href="/audit/instances/{improvement["id"]}"]'
    )
    assert html.text_of(link) == number
    row = next(link.iterancestors("tr"))
    assert html.texts(row, "td.num") == [str(improvement["events"])]

    misses = html.page(auditor.get("/audit?number=SI-1999-9999"))
    assert not html.select(misses, f'[href="/audit/instances/{improvement["id"]}"]')


def test_search_filters_by_person_status_source_and_dates(
    auditor: Any, improvement: dict[str, Any]
) -> None:
    link = f'[href="/audit/instances/{improvement["id"]}"]'

    def found(query: str) -> bool:
        response = auditor.get(f"/audit?{query}")
        assert response.status_code == 200, query
        return bool(html.select(html.page(response), link))

    assert found("person=po2")  # acted in it (proposed metrics), did not start it
    assert found("person=PO2")
    assert found("person=o2")
    assert found("person=赵工")  # po2 by display name
    assert found("person=owner")
    assert not found("person=cab")
    assert found("status=running")
    assert not found("status=completed")
    assert found("source=customer_feedback")
    assert not found("source=internal_audit")
    assert found("started_from=2000-01-01&started_to=2999-12-31")
    assert not found("started_to=2000-01-01")
    assert found("started_from=not-a-date")  # ignored, with a note
    assert html.select(html.page(auditor.get("/audit")), "table.audit-results")


@pytest.mark.parametrize("person", ["%", "_", "%25", "o%", "_wner", "%\\"])
def test_wildcards_in_the_person_filter_match_only_themselves(
    auditor: Any, improvement: dict[str, Any], person: str
) -> None:
    response = auditor.get("/audit", query_string={"person": person})
    assert response.status_code == 200
    assert not html.select(html.page(response), f'[href="/audit/instances/{improvement["id"]}"]')


def test_the_console_hands_out_the_chain_anchors(auditor: Any, improvement: dict[str, Any]) -> None:
    assert html.select(html.page(auditor.get("/audit")), 'a[href="/audit/anchors.json"]')
    response = auditor.get("/audit/anchors.json")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    heads = {h["instance_id"]: h for h in response.get_json()["heads"]}
    assert heads[improvement["id"]]["seq"] == improvement["events"]


def test_instance_page_shows_verified_chain_and_matching_replay(
    auditor: Any, improvement: dict[str, Any]
) -> None:
    base = f"/audit/instances/{improvement['id']}"
    response = auditor.get(base)
    doc = html.page(response)
    assert response.status_code == 200
    assert html.text_of(html.select_one(doc, "h1 .record-no")) == improvement["number"]
    chain = html.select_one(doc, "#check-chain")
    replayed = html.select_one(doc, "#check-replay")
    assert chain.get("data-ok") == "true"
    assert replayed.get("data-ok") == "true"
    assert html.text_of(html.select_one(chain, "h3")) == "哈希链校验通过"
    assert html.text_of(html.select_one(replayed, "h3")) == "重放结果与记录一致"
    slider = html.select_one(doc, "#step-slider")
    assert (slider.get("type"), slider.get("min"), slider.get("max")) == (
        "range",
        "1",
        str(improvement["events"]),
    )
    assert html.select(doc, f'a[href="{base}/history.json"]')
    assert html.select(doc, f'a[href="{base}/history.csv"]')
    assert len(html.select(doc, "#timeline .timeline-item")) == improvement["events"]
    assert all(script.get("src") for script in html.select(doc, "script"))  # no inline scripts
    # no state-changing forms apart from logging out
    posting = [f for f in html.select(doc, "form") if (f.get("method") or "").lower() == "post"]
    assert [f.get("action") for f in posting] == ["/logout"]


def test_step_returns_the_state_at_that_step(auditor: Any, improvement: dict[str, Any]) -> None:
    k = improvement["registered"]
    response = auditor.get(f"/audit/instances/{improvement['id']}/steps/{k}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is True
    assert body["step"] == k
    state = body["state"]
    assert state["seq"] == k
    assert state["bpmn_id"] == "register_input"
    assert "register_input" in state["completed_elements"]
    assert "define_metrics" not in state["completed_elements"]
    assert state["active_elements"] == ["propose_metrics"]
    assert "source" in state["changed"]
    assert state["data"]["source"] == "customer_feedback"
    assert body["before"]["source"] is None
    assert html.select(html.fragment(body["html"]["changes"]), '[data-key="source"]')
    assert "metrics" not in state["data"]

    # A parallel task's submission stays with its task: the panel shows what was sent.
    proposal = auditor.get(f"/audit/instances/{improvement['id']}/steps/{k + 2}").get_json()
    assert proposal["state"]["type"] == "task_completed"  # k + 1 is po1 claiming it
    assert proposal["state"]["bpmn_id"] == "propose_metrics"
    assert not proposal["state"]["changed"]
    assert "本步提交的内容" in html.texts(html.fragment(proposal["html"]["changes"]), "h4")

    last = auditor.get(f"/audit/instances/{improvement['id']}/steps/{improvement['events']}")
    assert "define_metrics" in last.get_json()["state"]["completed_elements"]
    assert auditor.get(f"/audit/instances/{improvement['id']}/steps/0").status_code == 404
    too_far = improvement["events"] + 1
    assert auditor.get(f"/audit/instances/{improvement['id']}/steps/{too_far}").status_code == 404


def test_history_exports_are_downloads(auditor: Any, improvement: dict[str, Any]) -> None:
    base = f"/audit/instances/{improvement['id']}"
    response = auditor.get(f"{base}/history.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert f"{improvement['number']}-history.csv" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True).lstrip("\ufeff")
    lines = text.splitlines()
    assert len(lines) == improvement["events"] + 1
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["seq"]) for r in rows] == list(range(1, improvement["events"] + 1))

    response = auditor.get(f"{base}/history.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    events = json.loads(response.get_data(as_text=True))
    assert len(events) == improvement["events"]
    assert events[0]["type"] == "instance_started"


def test_tampered_payload_shows_the_broken_seq(
    auditor: Any, improvement: dict[str, Any], db: Database
) -> None:
    k = improvement["registered"]
    with db.transaction() as session:
        event = session.scalar(
            select(Event).where(Event.instance_id == improvement["id"], Event.seq == k)
        )
        payload = json.loads(json.dumps(event.payload))
        payload["data"]["description"] = "改过的描述"
        session.execute(update(Event).where(Event.id == event.id).values(payload=payload))

    doc = html.page(auditor.get(f"/audit/instances/{improvement['id']}"))
    chain = html.select_one(doc, "#check-chain")
    assert (chain.get("data-ok"), chain.get("data-broken-at")) == ("false", str(k))
    assert html.text_of(html.select_one(chain, "h3")) == f"哈希链在事件 {k} 处断裂"
    assert f"event {k} was altered after it was written" in html.text_of(
        html.select_one(chain, "p.pre")
    )
    # the replay reaches the altered data too, and says where it differs
    replayed = html.select_one(doc, "#check-replay")
    assert (replayed.get("data-ok"), replayed.get("data-mismatch-at")) == ("false", str(k))
    body = auditor.get(f"/audit/instances/{improvement['id']}/steps/{k}").get_json()
    assert body["ok"] is False
    assert body["mismatch"]["seq"] == k
    alerts = html.texts(html.fragment(body["html"]["event"]), ".alert-error")
    assert any("此事件破坏了哈希链" in alert for alert in alerts)


def test_a_process_owner_gets_403_and_strangers_the_login(
    app: Any, improvement: dict[str, Any]
) -> None:
    """Verifying and replaying is for auditors, administrators and the improvement's
    owner and manager (DESIGN section 7); a process owner who took part gets 403."""
    po1 = client_for(app, "po1")
    for url in (
        "/audit",
        f"/audit/instances/{improvement['id']}",
        f"/audit/instances/{improvement['id']}/history.csv",
    ):
        assert po1.get(url).status_code == 403, url
    assert not any("/audit" in url for url in html.urls(html.page(po1.get("/"))))
    owner = client_for(app, "owner")
    assert owner.get(f"/audit/instances/{improvement['id']}").status_code == 200
    anonymous = app.test_client().get("/audit")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/login")


def test_admin_may_audit_and_sees_both_nav_links(app: Any, improvement: dict[str, Any]) -> None:
    admin = client_for(app, "admin")
    doc = html.page(admin.get(f"/audit/instances/{improvement['id']}"))
    assert html.texts(doc, 'nav.mainnav a[href="/audit"]') == ["审计"]
    assert html.texts(doc, 'nav.mainnav a[href="/admin/users"]') == ["系统管理"]
    assert html.texts(doc, "nav.subnav a") == []  # the tabs are on the administration pages
    users = html.page(admin.get("/admin/users"))
    assert html.texts(users, "nav.subnav a") == ["用户管理", "定期评审", "未送达的通知"]
    assert html.texts(users, 'nav.subnav a[aria-current="page"]') == ["用户管理"]
