"""The register's row of an instance whose process keeps a record (its diagram names a
`record_prefix`): its number, status, the columns the register filters on, and the
entries logged over time (review rounds, monitoring readings).

Everything the row holds follows from what the diagram declares (engine.workflow.
model) and what the commands recorded; it is never read out of serialized state.
The record's content lives in the instance data and is joined in when read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from engine.persistence.numbering import next_number
from engine.persistence.records import FIELDS_OF, RECORD_TABLE, RecordRow
from engine.workflow.model import ProcessModel

# The register's filter columns, copied from the instance data as it changes.
FILTER_COLUMNS = ("source", "reference", "description")


def empty_fields(model: ProcessModel) -> dict[str, Any]:
    return {log: [] for log in model.record_logs}


def create(
    session: Session, model: ProcessModel, instance_id: int, raised_by: str | None, at: datetime
) -> RecordRow | None:
    """The record of a new instance, numbered `<prefix>-<year>-<n>`; None when its
    process keeps none."""
    prefix = model.record_prefix
    if prefix is None:
        return None
    number = next_number(session, prefix, at.year)
    status = model.first_record_status or "open"
    fields = empty_fields(model)
    record_id = session.execute(
        insert(RECORD_TABLE)
        .values(
            number=number,
            instance_id=instance_id,
            status=status,
            raised_by=raised_by,
            raised_on=at,
            fields=fields,
        )
        .returning(RECORD_TABLE.c.id)
    ).scalar_one()
    return RecordRow(record_id, number, status, None, None, None, fields, None)


def note_task(
    session: Session | None,
    model: ProcessModel,
    record: RecordRow,
    bpmn_id: str,
    data: Mapping[str, Any],
    actor: str,
    at: datetime,
) -> None:
    """Keep what the diagram says a completed task adds to the record: an entry in a
    log (`record_log`), who did it (`record_actor`). The logged entries are read
    (through `session`) only when this task adds to them."""
    log = model.log_of(bpmn_id)
    actor_field = model.actor_field_of(bpmn_id)
    if log is None and actor_field is None:
        return
    if record.fields is None:
        if session is None:
            raise ValueError(
                "the record's entries are not loaded and there is no session to read them"
            )
        stored = session.connection().execute(FIELDS_OF, {"record_id": record.id}).scalar()
        record.fields = dict(stored or {})
    fields = dict(record.fields)
    if log is not None:
        entry = {name: data.get(name) for name in log.fields}
        fields[log.name] = [*fields.get(log.name, []), {**entry, "by": actor, "on": at.isoformat()}]
    if actor_field is not None:
        fields[actor_field] = actor
    record.set("fields", fields)


def status_of(
    model: ProcessModel,
    completed: bool,
    completed_elements: Sequence[str],
    active_elements: Sequence[str],
    current: str,
) -> str:
    """The record's status: once the instance ended, the status of the end event it
    ended at; before, the status of its first active element that declares one."""
    if completed:
        for element in reversed(completed_elements):
            status = model.end_status_of(element)
            if status:
                return status
        return current
    for element in active_elements:
        status = model.status_of(element)
        if status:
            return status
    return current


def sync(
    model: ProcessModel,
    record: RecordRow,
    data: Mapping[str, Any],
    completed: bool,
    completed_elements: Sequence[str],
    active_elements: Sequence[str],
    at: datetime,
) -> None:
    """The register's columns after a command."""
    for name in FILTER_COLUMNS:
        record.set(name, data.get(name))
    record.set(
        "status", status_of(model, completed, completed_elements, active_elements, record.status)
    )
    if completed and record.closed_on is None:
        record.set("closed_on", at)
