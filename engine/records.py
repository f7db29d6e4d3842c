"""服务改进记录: numbering and the register's projection of an instance.

The record is rebuilt from what the commands recorded (instance data plus the
review and monitoring entries appended as tasks complete), never by reading the
serialized workflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store import Counter, ImprovementRecord, Writes, is_postgres, table, utcnow

IMPROVEMENT_PROCESS = "service_improvement"

# Where the instance stands -> the record's status, by the element that is active.
STATUS_BY_ELEMENT: dict[str, str] = {
    "register_input": "registered",
    "propose_metrics": "defining_metrics",
    "define_metrics": "defining_metrics",
    "set_baseline_targets": "defining_metrics",
    "collect_data": "collecting_data",
    "analyse_gaps": "analysing",
    "record_improvement": "planning",
    "review_plan": "in_review",
    "implement_measures": "implementing",
    "rebaseline": "rebaselining",
    "monitor_progress": "monitoring",
    "wait_recheck": "monitoring",
    "record_verification": "verifying",
    "close_improvement": "closing",
}

RECORD_FIELDS = (
    "related_services",
    "process_owners",
    "metrics",
    "targets",
    "gaps",
    "impact",
    "comments",
    "problem",
    "root_cause",
    "improvement_type",
    "measures",
    "verified_on",
    "method",
    "evidence",
    "result",
    "summary",
    "carried_over",
    "next_cycle",
)


def next_number(session: Session, prefix: str, year: int | None = None) -> str:
    """Next number of a yearly sequence, e.g. SI-2026-0001; one atomic statement."""
    year = year or utcnow().year
    name = f"{prefix}-{year}"
    insert = pg_insert if is_postgres(session) else sqlite_insert
    statement = (
        insert(Counter)
        .values(name=name, value=1)
        .on_conflict_do_update(index_elements=["name"], set_={"value": Counter.value + 1})
        .returning(Counter.value)
    )
    value = session.execute(statement).scalar_one()
    return f"{name}-{value:04d}"


RECORD_TABLE = table(ImprovementRecord)


@dataclass
class RecordRow:
    """The register's row as a command reads and changes it; `write` saves what changed."""

    id: int
    number: str
    status: str
    source: str | None
    reference: str | None
    description: str | None
    # The logged entries (reviews, monitoring readings): one more with every pass of
    # the monitoring loop, so read only by the commands that add one (None: not read).
    fields: dict[str, Any] | None
    closed_on: datetime | None
    changes: dict[str, Any] = field(default_factory=dict)

    def set(self, column: str, value: Any) -> None:
        if getattr(self, column) != value:
            setattr(self, column, value)
            self.changes[column] = value


def create(session: Session, instance_id: int, raised_by: str | None, at: datetime) -> RecordRow:
    number = next_number(session, "SI", at.year)
    fields: dict[str, Any] = {"reviews": [], "monitoring": []}
    record_id = session.execute(
        insert(RECORD_TABLE)
        .values(
            number=number,
            instance_id=instance_id,
            status="registered",
            raised_by=raised_by,
            raised_on=at,
            fields=fields,
        )
        .returning(RECORD_TABLE.c.id)
    ).scalar_one()
    return RecordRow(record_id, number, "registered", None, None, None, fields, None)


def for_instance(session: Session, instance_id: int) -> ImprovementRecord | None:
    return session.scalar(
        select(ImprovementRecord).where(ImprovementRecord.instance_id == instance_id)
    )


RECORD_ROW_COLUMNS = (
    RECORD_TABLE.c.id,
    RECORD_TABLE.c.number,
    RECORD_TABLE.c.status,
    RECORD_TABLE.c.source,
    RECORD_TABLE.c.reference,
    RECORD_TABLE.c.description,
    RECORD_TABLE.c.closed_on,
)
_FIELDS_OF = select(RECORD_TABLE.c.fields).where(RECORD_TABLE.c.id == bindparam("record_id"))


def row_from(values: Sequence[Any]) -> RecordRow | None:
    """A RecordRow from RECORD_ROW_COLUMNS selected (None when the id is null: no record)."""
    if values[0] is None:
        return None
    return RecordRow(
        id=values[0],
        number=values[1],
        status=values[2],
        source=values[3],
        reference=values[4],
        description=values[5],
        fields=None,
        closed_on=values[6],
    )


NOTED_TASKS = frozenset({"review_plan", "monitor_progress", "record_verification"})


def note_task(
    session: Session | None,
    record: RecordRow,
    bpmn_id: str,
    data: dict[str, Any],
    actor: str,
    at: datetime,
) -> None:
    """Keep the entries a record lists over time (each review, each monitoring reading).
    The entries are read (through `session`) only when this task adds one."""
    if bpmn_id not in NOTED_TASKS:
        return
    if record.fields is None:
        assert session is not None, "the record's entries are not loaded"
        stored = session.connection().execute(_FIELDS_OF, {"record_id": record.id}).scalar()
        record.fields = dict(stored or {})
    fields = dict(record.fields)
    if bpmn_id == "review_plan":
        fields["reviews"] = [
            *fields.get("reviews", []),
            {
                "decision": data.get("decision"),
                "comment": data.get("comment"),
                "by": actor,
                "on": at.isoformat(),
            },
        ]
    elif bpmn_id == "monitor_progress":
        fields["monitoring"] = [
            *fields.get("monitoring", []),
            {
                "outcome": data.get("outcome"),
                "note": data.get("note"),
                "by": actor,
                "on": at.isoformat(),
            },
        ]
    elif bpmn_id == "record_verification":
        fields["verifier"] = actor
    record.set("fields", fields)


def status_of(completed: bool, active_elements: Sequence[str], current: str) -> str:
    """The register's status: closed when the instance ended, else by its active element."""
    if completed:
        return "closed"
    for element in active_elements:
        if element in STATUS_BY_ELEMENT:
            return STATUS_BY_ELEMENT[element]
    return current


def sync(
    record: RecordRow,
    data: dict[str, Any],
    completed: bool,
    active_elements: Sequence[str],
    at: datetime,
) -> None:
    """The register's columns. The record's content lives in the instance data and is
    joined in when the record is read (describe), not copied on every command."""
    for name in ("source", "reference", "description"):
        record.set(name, data.get(name))
    record.set("status", status_of(completed, active_elements, record.status))
    if completed and record.closed_on is None:
        record.set("closed_on", at)


_UPDATE_RECORD = update(RECORD_TABLE).where(RECORD_TABLE.c.id == bindparam("row_id"))


def write(session: Session, record: RecordRow) -> None:
    if record.changes:
        Writes.of(session).add(_UPDATE_RECORD, {"row_id": record.id, **record.changes})
        record.changes = {}


def describe(record: ImprovementRecord, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record as the register and exports show it: the logged entries (reviews,
    monitoring) plus the procedure's fields from the instance data."""
    data = record.instance.data if data is None else data
    content = {name: (data or {}).get(name) for name in RECORD_FIELDS if name in (data or {})}
    return {
        **content,
        "number": record.number,
        "status": record.status,
        "instance_id": record.instance_id,
        "source": record.source,
        "reference": record.reference,
        "description": record.description,
        "raised_by": record.raised_by,
        "raised_on": record.raised_on.isoformat(),
        "closed_on": record.closed_on.isoformat() if record.closed_on else None,
        **(record.fields or {}),
    }
