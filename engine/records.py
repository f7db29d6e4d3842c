"""服务改进记录: numbering and the register's projection of an instance.

The record is rebuilt from what the commands recorded (instance data plus the
review and monitoring entries appended as tasks complete), never by reading the
serialized workflow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.store import Counter, ImprovementRecord, Instance, is_postgres, utcnow

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


def create(session: Session, instance: Instance, raised_by: str | None) -> ImprovementRecord:
    record = ImprovementRecord(
        number=next_number(session, "SI"),
        instance_id=instance.id,
        status="registered",
        raised_by=raised_by,
        raised_on=utcnow(),
        fields={"reviews": [], "monitoring": []},
    )
    session.add(record)
    return record


def for_instance(session: Session, instance_id: int) -> ImprovementRecord | None:
    return session.scalar(
        select(ImprovementRecord).where(ImprovementRecord.instance_id == instance_id)
    )


def note_task(
    record: ImprovementRecord, bpmn_id: str, data: dict[str, Any], actor: str, at: datetime
) -> None:
    """Keep the entries a record lists over time (each review, each monitoring reading)."""
    fields = dict(record.fields or {})
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
    record.fields = fields


def sync(record: ImprovementRecord, instance: Instance) -> None:
    """The register's columns. The record's content lives in the instance data and is
    joined in when the record is read (describe), not copied on every command."""
    data = instance.data or {}
    for name in ("source", "reference", "description"):
        if getattr(record, name) != data.get(name):
            setattr(record, name, data.get(name))
    if instance.status == "completed":
        record.status = "closed"
        record.closed_on = record.closed_on or instance.completed_at
    else:
        for element in instance.active_elements or []:
            if element in STATUS_BY_ELEMENT:
                record.status = STATUS_BY_ELEMENT[element]
                break


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
