"""The improvement register (服务改进记录台账): filters, sorting, paging and counts on
the page and in the JSON, who sees which record, the record page, its print view and
its workbook, and the register as a workbook."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from openpyxl import load_workbook

from engine.persistence.database import Database
from tests.cycle import REGISTER, Driver
from tests.helpers import html
from tests.helpers.actors import actors_of
from tests.helpers.api import bearer
from tests.helpers.doors import RuntimeDoor
from tests.helpers.pages import client_for

PO3_PASSWORD = "ein-Register-2026"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Register:
    app: Any
    closed: str  # a full cycle: two review rounds, two monitoring entries
    in_review: str  # the plan waits for its first review
    audit: str  # an internal audit finding with only po2 taking part, just registered


def number_of(app: Any, instance_id: int) -> str:
    runtime = app.extensions["csi"].runtime
    found = runtime.queries.record_numbers({instance_id})
    return str(found[instance_id])


@pytest.fixture
def register(app: Any, db: Database) -> Register:
    runtime = app.extensions["csi"].runtime
    runtime.upsert_user("po3", PO3_PASSWORD, ["ProcessOwner"], "流程负责人三")
    door = RuntimeDoor(runtime, db, actors_of(db))
    driver = Driver(door)
    closed = driver.run().instance_id
    in_review = door.start("owner")
    driver.to_first_review(in_review)
    audit = door.start("owner")
    driver.do(
        "owner",
        audit,
        "register_input",
        {
            **REGISTER,
            "source": "internal_audit",
            "reference": "NS-2026-07",
            "description": "内审发现：变更记录不完整",
            "process_owners": ["po2"],
        },
    )
    return Register(app, number_of(app, closed), number_of(app, in_review), number_of(app, audit))


def numbers(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return html.texts(html.page(response), "table.register tbody a.record-no")


def test_the_manager_sees_every_record_with_counts(register: Register) -> None:
    manager = client_for(register.app, "manager")
    page = manager.get("/improvements")
    assert numbers(page) == sorted([register.closed, register.in_review, register.audit])[::-1]
    root = html.page(page)
    assert html.select_one(root, ".register-total").get("data-total") == "3"
    open_count = html.text_of(html.select_one(root, 'a[data-state="open"] .count'))
    closed_count = html.text_of(html.select_one(root, 'a[data-state="closed"] .count'))
    assert (open_count, closed_count) == ("2", "1")
    assert html.select(root, 'a[data-stage="in_review"]')
    row = html.select_one(root, f'tr[data-number="{register.closed}"]')
    text = html.text_of(row)
    assert "客户反馈" in text or "customer" in text.lower()
    assert "owner" in text
    assert "已关闭" in text or "Closed" in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("source=internal_audit", ["audit"]),
        ("status=closed", ["closed"]),
        ("status=open", ["audit", "in_review"]),
        ("stage=in_review", ["in_review"]),
        ("metric=AVAIL", ["closed", "in_review"]),
        ("metric=AVAI", []),
        ("process_owner=po1", ["closed", "in_review"]),
        ("owner=owner&year=2026", ["audit", "closed", "in_review"]),
        ("year=2001", []),
        ("q=NS-2026", ["audit"]),
        ("q=变更记录", ["audit"]),
        # the plan's measures fall due on 2026-12-15 and are still open
        ("overdue=1", []),
    ],
)
def test_filters(register: Register, query: str, expected: list[str]) -> None:
    manager = client_for(register.app, "manager")
    found = numbers(manager.get(f"/improvements?{query}"))
    assert sorted(found) == sorted(getattr(register, name) for name in expected)


def test_sorting_and_paging(register: Register) -> None:
    manager = client_for(register.app, "manager")
    ascending = numbers(manager.get("/improvements?sort=number&order=asc"))
    assert ascending == sorted(ascending)
    assert len(ascending) == 3
    by_opening = numbers(manager.get("/improvements?sort=raised_on&order=asc"))
    assert by_opening == [register.closed, register.in_review, register.audit]
    pages = [
        numbers(manager.get(f"/improvements?sort=number&order=asc&per_page=2&page={n}"))
        for n in (1, 2)
    ]
    assert pages == [ascending[:2], ascending[2:]]
    second = html.page(manager.get("/improvements?per_page=2&page=2"))
    assert html.select(second, 'a[rel="prev"]')
    assert not html.select(second, 'a[rel="next"]')


def test_a_process_owner_sees_only_the_records_they_take_part_in(register: Register) -> None:
    po1 = client_for(register.app, "po1")
    assert sorted(numbers(po1.get("/improvements"))) == sorted(
        [register.closed, register.in_review]
    )
    assert po1.get(f"/improvements/{register.audit}").status_code == 404
    assert po1.get(f"/improvements/{register.audit}/print").status_code == 404
    assert po1.get(f"/improvements/{register.audit}/xlsx").status_code == 404
    assert po1.get(f"/improvements/{register.closed}").status_code == 200
    po3 = client_for(register.app, "po3", PO3_PASSWORD)
    assert numbers(po3.get("/improvements")) == []
    assert po3.get(f"/improvements/{register.closed}").status_code == 404
    assert po3.get("/improvements/SI-1999-0001").status_code == 404
    assert po3.get("/improvements/<script>").status_code == 404


def test_the_record_page_shows_every_review_round_monitoring_entry_and_rfc(
    register: Register,
) -> None:
    manager = client_for(register.app, "manager")
    response = manager.get(f"/improvements/{register.closed}")
    assert response.status_code == 200
    root = html.page(response)
    reviews = html.select(root, 'table[data-log="reviews"] tbody tr[data-round]')
    assert len(reviews) == 2
    assert "请补充回退方案" in html.text_of(reviews[0])
    assert "同意" in html.text_of(reviews[1])
    monitoring = html.select(root, 'table[data-log="monitoring"] tbody tr[data-round]')
    assert len(monitoring) == 2
    assert "继续观察" in html.text_of(monitoring[0])
    assert "99.6" in html.text_of(monitoring[0])
    assert "99.95" in html.text_of(monitoring[1])
    rfcs = html.select(root, "table.calls tr[data-rfc]")
    assert [r.get("data-rfc") for r in rfcs] == ["RFC-2026-0001", "RFC-2026-0002"]
    assert "资源不足" in html.text_of(rfcs[1])
    assert "有效" in html.text_of(html.select_one(root, "table.verification"))
    assert html.select(root, "a[data-print]")
    assert html.select(root, "a[data-xlsx]")


def test_the_print_view_is_the_standalone_document(register: Register) -> None:
    manager = client_for(register.app, "manager")
    response = manager.get(f"/improvements/{register.closed}/print")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "服务改进管理制度" in text
    assert "YNTD-ITSS-0409" in text
    assert "@page" in text
    assert "<script" not in text
    policy = response.headers["Content-Security-Policy"]
    assert "'sha256-" in policy
    assert "script-src" not in policy  # default-src 'none' forbids every script
    english = manager.get(f"/improvements/{register.closed}/print?lang=en").get_data(as_text=True)
    assert "Plan reviews" in english


def test_the_records_workbook(register: Register) -> None:
    manager = client_for(register.app, "manager")
    response = manager.get(f"/improvements/{register.closed}/xlsx")
    assert response.status_code == 200
    assert response.mimetype == XLSX
    assert "attachment" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data))
    cells = "\n".join(
        str(c) for s in book.worksheets for row in s.iter_rows(values_only=True) for c in row if c
    )
    for expected in (
        register.closed,
        "请补充回退方案",
        "同意",
        "继续观察",
        "已达成",
        "RFC-2026-0002",
    ):
        assert expected in cells


def workbook_text(data: bytes) -> dict[str, list[tuple[Any, ...]]]:
    book = load_workbook(io.BytesIO(data), read_only=True)
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets}


def test_the_register_workbook_follows_the_filters(register: Register) -> None:
    manager = client_for(register.app, "manager")
    response = manager.get("/improvements?format=xlsx&status=closed")
    assert response.status_code == 200
    assert response.mimetype == XLSX
    sheets = workbook_text(response.data)
    assert list(sheets) == ["服务改进记录", "改进措施与变更", "度量数据"]
    records = sheets["服务改进记录"]
    assert records[0][0] == "记录编号"
    assert [r[0] for r in records[1:]] == [register.closed]
    measures = sheets["改进措施与变更"]
    assert {r[1] for r in measures[1:]} == {"核心库主备自动切换", "故障处理知识库"}
    assert {r[6] for r in measures[1:]} == {"RFC-2026-0001", "RFC-2026-0002"}
    readings = sheets["度量数据"]
    assert len(readings) == 1 + 6
    assert 99.95 in [r[2] for r in readings[1:]]
    english = workbook_text(manager.get("/improvements?format=xlsx&lang=en").data)
    assert list(english) == ["Records", "Measures and RFCs", "Metric readings"]
    assert english["Records"][0][0] == "Number"
    assert len(english["Records"]) == 1 + 3


def test_the_api_register_filters_pages_and_exports(register: Register) -> None:
    client = register.app.test_client()
    headers = bearer(client, "manager")
    everything = client.get("/api/v1/improvements", headers=headers)
    assert everything.status_code == 200
    assert everything.headers["X-Total-Count"] == "3"
    assert {r["number"] for r in everything.json} == {
        register.closed,
        register.in_review,
        register.audit,
    }
    closed = next(r for r in everything.json if r["number"] == register.closed)
    assert [r["decision"] for r in closed["reviews"]] == ["reject", "approve"]
    assert closed["status"] == "closed"
    audit = client.get("/api/v1/improvements?source=internal_audit", headers=headers)
    assert [r["number"] for r in audit.json] == [register.audit]
    paged = client.get(
        "/api/v1/improvements?per_page=1&page=3&sort=number&order=asc", headers=headers
    )
    assert paged.headers["X-Total-Count"] == "3"
    assert [r["number"] for r in paged.json] == [
        max(register.closed, register.in_review, register.audit)
    ]
    xlsx = client.get("/api/v1/improvements?format=xlsx&metric=AVAIL", headers=headers)
    assert xlsx.status_code == 200
    assert xlsx.mimetype == XLSX
    assert len(workbook_text(xlsx.data)["服务改进记录"]) == 1 + 2
    assert client.get("/api/v1/improvements?format=pdf", headers=headers).status_code == 422
    po1 = bearer(client, "po1")
    mine = client.get("/api/v1/improvements", headers=po1).json
    assert register.audit not in {r["number"] for r in mine}


def test_overdue_is_an_open_record_past_a_measures_due_date_or_an_open_tasks_due_time(
    register: Register, db: Database
) -> None:
    from datetime import UTC, datetime

    from engine.queries.register import RegisterFilter, register_page

    def overdue(now: datetime) -> set[str]:
        with db.sessions() as session:
            page = register_page(session, RegisterFilter(overdue=True), now)
            marked = {
                r.number for r in register_page(session, RegisterFilter(), now).rows if r.overdue
            }
        found = {r.number for r in page.rows}
        assert found == marked  # the filter and the row's marker agree
        return found

    # every open task falls due within days of being opened; the measures on 2026-12-15
    assert overdue(datetime(2026, 12, 20, tzinfo=UTC)) == {register.in_review, register.audit}
    assert overdue(datetime(2000, 1, 1, tzinfo=UTC)) == set()


def test_a_full_cycle_fills_every_register_column(register: Register, db: Database) -> None:
    from engine.clock import utcnow
    from engine.queries.register import RegisterFilter, register_page

    with db.sessions() as session:
        rows = register_page(session, RegisterFilter(q=register.closed), utcnow()).rows
    assert len(rows) == 1
    row = rows[0]
    assert row.number == register.closed
    assert row.description == REGISTER["description"]
    assert (row.source, row.reference, row.owner) == ("customer_feedback", "KF-2026-118", "owner")
    assert (row.stage, row.closed, row.overdue) == ("closed", True, False)
    assert row.closed_on is not None
    assert row.closed_on >= row.raised_on
    assert row.gap_status == "achieved"
    assert row.people == ("po1", "po2")
    assert row.metric_codes == ("AVAIL", "MTTR")
