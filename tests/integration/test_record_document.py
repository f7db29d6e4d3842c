"""The record as a document (engine.documents.record), after a full cycle: every review
round, monitoring entry with its readings, RFC and the verification, as HTML and xlsx,
the same bytes each time."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from engine.access import Actor
from engine.documents.record import RecordDocument, record_document, record_html, record_xlsx
from engine.documents.shown import Label
from engine.pack import load
from engine.persistence.database import Database
from engine.persistence.models import Record
from engine.runtime import Runtime
from tests.cycle import Driver
from tests.helpers.doors import RuntimeDoor


@pytest.fixture
def cycled(db: Database, actors: dict[str, Actor]) -> tuple[Database, int]:
    result = Driver(RuntimeDoor(Runtime(db), db, actors)).run()
    return db, result.instance_id


def document(db: Database, instance_id: int) -> RecordDocument:
    with db.sessions() as session:
        return record_document(session, load("procedure"), instance_id)


def test_the_document_keeps_every_round_entry_rfc_and_the_verification(
    cycled: tuple[Database, int],
) -> None:
    doc = document(*cycled)
    assert doc.number.startswith("SI-")
    assert doc.document == "YNTD-ITSS-0409"
    assert doc.status == "closed"
    assert doc.closed_on is not None
    assert [(r.raw["decision"], r.raw["comment"], r.by) for r in doc.rounds] == [
        ("reject", "请补充回退方案", "manager"),
        ("approve", "同意", "manager"),
    ]
    assert [m.raw["outcome"] for m in doc.monitoring] == ["continue", "achieved"]
    # each monitoring entry with the round of readings it was based on
    assert [{r.code: r.value for r in m.readings} for m in doc.monitoring] == [
        {"AVAIL": 99.6, "MTTR": 3.0},
        {"AVAIL": 99.95, "MTTR": 1.8},
    ]
    assert len(doc.readings) == 6
    rfcs = {c.key: c for c in doc.rfcs}
    assert set(rfcs) == {"RFC-2026-0001", "RFC-2026-0002"}
    first = {f.name: f.value for f in rfcs["RFC-2026-0001"].columns}
    assert first["type"] == Label("正常变更", "Normal change")
    assert first["decision"] == Label("通过", "Approve")
    assert first["result"].en == "Success"
    assert rfcs["RFC-2026-0001"].outcome == Label("已实施", "Implemented")
    assert rfcs["RFC-2026-0002"].outcome.en == "Rejected"
    assert rfcs["RFC-2026-0002"].title == "故障处理知识库"
    second = {f.name: f.value for f in rfcs["RFC-2026-0002"].columns}
    assert second["decision"].en == "Reject"
    assert second["comment"].zh == "资源不足"
    assert doc.verification is not None
    assert doc.verification.by == "owner"
    assert doc.verified_at == "2026-11-25"
    signed = {s.label.zh: s.actor for s in doc.signatures}
    assert signed == {"编制": "owner", "审核": "manager", "批准": "owner"}
    assert doc.chain_ok
    assert len(doc.chain_head) == 64
    names = {f.name for f in doc.fields}
    assert {"source", "problem", "root_cause", "measures", "metrics", "targets"} <= names


def test_html_is_a_printable_page_with_header_footer_and_every_round(
    cycled: tuple[Database, int],
) -> None:
    doc = document(*cycled)
    page = record_html(doc, "zh-CN")
    assert "服务改进管理制度" in page
    assert "YNTD-ITSS-0409" in page
    assert doc.number in page
    assert doc.chain_head in page
    assert "2026-11-25" in page
    assert "@page" in page
    assert "请补充回退方案" in page
    assert "同意" in page
    assert "继续观察" in page
    assert "已达成" in page
    assert "RFC-2026-0002" in page
    assert "资源不足" in page
    assert "<script" not in page
    english = record_html(doc, "en")
    assert "Service improvement procedure" in english
    assert "Plan reviews" in english
    # deterministic: the same document renders the same page
    assert record_html(document(*cycled), "zh-CN") == page


def test_xlsx_holds_every_round_entry_rfc_and_reading_and_is_the_same_bytes(
    cycled: tuple[Database, int],
) -> None:
    doc = document(*cycled)
    data = record_xlsx(doc, "zh-CN")
    assert record_xlsx(document(*cycled), "zh-CN") == data
    book = load_workbook(io.BytesIO(data))
    text = {
        sheet.title: "\n".join(
            str(cell) for row in sheet.iter_rows(values_only=True) for cell in row if cell
        )
        for sheet in book.worksheets
    }
    everything = "\n".join(text.values())
    assert doc.number in everything
    assert "请补充回退方案" in text["方案审核记录"]
    assert "同意" in text["方案审核记录"]
    monitoring = text["改进监控记录（观察期）"]
    assert "继续观察" in monitoring
    assert "AVAIL=99.95" in monitoring
    assert "RFC-2026-0001" in everything
    assert "资源不足" in everything
    assert "99.95" in text["度量数据"]
    english = load_workbook(io.BytesIO(record_xlsx(doc, "en")))
    assert "Plan reviews" in english.sheetnames


def test_the_register_columns_follow_the_data(cycled: tuple[Database, int]) -> None:
    db, instance_id = cycled
    with db.sessions() as session:
        record = session.scalar(select(Record).where(Record.instance_id == instance_id))
        assert record is not None
        assert record.people == " po1 po2 "
        assert record.metric_codes == " AVAIL MTTR "
        assert record.gap_status == "achieved"
        # every measure came back from change management with an outcome: nothing is due
        assert record.due_on is None


def test_an_open_measure_keeps_the_earliest_due_date(
    db: Database, actors: dict[str, Actor]
) -> None:
    door = RuntimeDoor(Runtime(db), db, actors)
    driver = Driver(door)
    instance_id = door.start("owner")
    driver.to_first_review(instance_id)
    with db.sessions() as session:
        record = session.scalar(select(Record).where(Record.instance_id == instance_id))
        assert record is not None
        assert record.due_on == "2026-12-15"
        assert record.gap_status == "improving"
