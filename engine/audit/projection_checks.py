"""At the end of a replay, what the pages show must be what the events produce: the
instance row, its task rows, the metric values it recorded and its record. One check
per projection; the first difference is a Mismatch naming the table and both values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit.mismatch import Mismatch, payload_of
from engine.pack import Pack
from engine.persistence.models import Event, HumanTask, Instance, MetricValue, Record
from engine.persistence.records import RecordRow
from engine.projections import records
from engine.workflow import stepping
from engine.workflow.parsing import ParsedSpecs


class Replayed(Protocol):
    """What a finished replay rebuilt."""

    seen: stepping.Observation | None
    parsed: ParsedSpecs | None
    readings: list[tuple[str, float, str | None]]


def pinned_after(events: Sequence[Event]) -> tuple[Any, dict[str, Any]]:
    """The definition id and called pins the instance row should hold after `events`."""
    pinned: tuple[Any, dict[str, Any]] = (None, {})
    for event in events:
        if event.type in ("instance_started", "instance_migrated"):
            payload = payload_of(event)
            called = {str(k): v for k, v in (payload.get("called") or {}).items()}
            pinned = ((payload.get("definition") or {}).get("id"), called)
    return pinned


def check_projections(
    session: Session, pack: Pack, instance: Instance, run: Replayed, events: Sequence[Event]
) -> None:
    seen = run.seen
    if seen is None:
        return  # nothing was replayed: nothing to compare
    last = events[-1].seq if events else 0
    check_instance_row(instance, seen, events, last)
    check_task_rows(session, pack, instance, seen, events, last)
    check_readings(session, instance, run.readings, last)
    check_record(session, instance, seen, run.parsed, events, last)


def _differs(seq: int, table: str, what: str, replayed: Any, stored: Any) -> Mismatch:
    """The row as stored is what the record holds; the value the events produce is the
    replay's."""
    return Mismatch(
        seq, table, f"the stored {what} differs from the replay", recorded=stored, replayed=replayed
    )


def check_instance_row(
    instance: Instance, seen: stepping.Observation, events: Sequence[Event], last: int
) -> None:
    status = "completed" if seen.completed else "running"
    if instance.status != status:
        raise _differs(last, "instance", "status", status, instance.status)
    definition_id, called = pinned_after(events)
    stored_called = {str(k): v for k, v in (instance.called_definitions or {}).items()}
    if (instance.definition_id, stored_called) != (definition_id, called):
        raise _differs(
            last,
            "instance",
            "pinned definitions",
            {"definition": definition_id, "called": called},
            {"definition": instance.definition_id, "called": stored_called},
        )
    difference = stepping.data_difference(seen.data, instance.data or {})
    if difference is not None:
        raise _differs(last, "instance", *difference)
    for what, expected_list, stored_list in (
        ("completed elements", seen.completed_elements, instance.completed_elements),
        ("active elements", seen.active_elements, instance.active_elements),
    ):
        if set(expected_list) != set(stored_list or []):
            raise _differs(last, "instance", what, sorted(expected_list), sorted(stored_list or []))


def check_task_rows(
    session: Session,
    pack: Pack,
    instance: Instance,
    seen: stepping.Observation,
    events: Sequence[Event],
    last: int,
) -> None:
    rows = session.execute(
        select(
            HumanTask.id,
            HumanTask.bpmn_id,
            HumanTask.status,
            HumanTask.completed_by,
            HumanTask.role,
            HumanTask.assignee,
        ).where(HumanTask.instance_id == instance.id)
    ).all()
    open_rows = sorted(str(r.id) for r in rows if r.status == "open")
    if open_rows != sorted(seen.open_tasks):
        raise _differs(last, "human_task", "open tasks", sorted(seen.open_tasks), open_rows)
    # Who may act on an open task is read from its row: it must be what the diagram says.
    by_id = {str(t.id): t for t in seen.ready}
    for row in rows:
        task = by_id.get(str(row.id))
        if row.status != "open" or task is None:
            continue
        expected = {
            "bpmn_id": stepping.element(task),
            "role": pack.roles.for_lane(task.task_spec.lane),
            "assignee": stepping.assignee_of(task),
        }
        stored = {"bpmn_id": row.bpmn_id, "role": row.role, "assignee": row.assignee}
        if stored != expected:
            raise _differs(last, "human_task", f"open task {row.id}", expected, stored)
    completions = {str(e.task_id): e.actor for e in events if e.type == "task_completed"}
    done_rows = {str(r.id): r.completed_by for r in rows if r.status == "completed"}
    for task_id in sorted(set(done_rows) | set(completions)):
        if done_rows.get(task_id) != completions.get(task_id):
            raise _differs(
                last,
                "human_task",
                f"completion of task {task_id}",
                completions.get(task_id),
                done_rows.get(task_id),
            )


def check_readings(
    session: Session,
    instance: Instance,
    readings: Sequence[tuple[str, float, str | None]],
    last: int,
) -> None:
    expected = sorted(readings, key=repr)
    stored = sorted(
        (
            (r.code, float(r.value), r.recorded_by)
            for r in session.execute(
                select(MetricValue.code, MetricValue.value, MetricValue.recorded_by).where(
                    MetricValue.instance_id == instance.id
                )
            )
        ),
        key=repr,
    )
    if expected != stored:
        raise _differs(last, "metric_value", "metric values", expected, stored)


def check_record(
    session: Session,
    instance: Instance,
    seen: stepping.Observation,
    parsed: ParsedSpecs | None,
    events: Sequence[Event],
    last: int,
) -> None:
    started = payload_of(events[0]) if events else {}
    number = started.get("record_number")
    record = session.scalar(select(Record).where(Record.instance_id == instance.id))
    table = Record.__tablename__
    if number is None and record is None:
        return
    if record is None or record.number != number:
        raise _differs(last, table, "record number", number, record and record.number)
    model = parsed.models.get(instance.process_id) if parsed is not None else None
    if model is None:
        raise _differs(last, table, "record", "no record kept by the diagram", number)
    expected = RecordRow(
        record.id, number, record.status, None, None, None, records.empty_fields(model), None
    )
    for event in events:
        if event.type == "task_completed" and event.bpmn_id:
            data = payload_of(event).get("data") or {}
            records.note_task(
                None, model, expected, event.bpmn_id, data, event.actor or "", event.at
            )
    records.sync(
        model,
        expected,
        seen.data,
        seen.completed,
        seen.completed_elements,
        seen.active_elements,
        instance.completed_at or events[-1].at,
    )
    for column in (*records.FILTER_COLUMNS, "status", "fields"):
        if getattr(expected, column) != getattr(record, column):
            raise _differs(last, table, column, getattr(expected, column), getattr(record, column))
