"""The register's row of an instance whose process keeps a record (its diagram names a
`record_prefix`): its number, status, the columns the register filters on, and the
entries logged over time (review rounds, monitoring readings).

Everything the row holds follows from what the diagram declares (engine.workflow.
model) and what the commands recorded; it is never read out of serialized state.
The record's content lives in the instance data and is joined in when read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from engine.persistence.numbering import next_number
from engine.persistence.records import FIELDS_OF, RECORD_TABLE, RecordRow
from engine.workflow.model import ProcessModel

# The register's filter columns, copied from the instance data as it changes.
FILTER_COLUMNS = ("source", "reference", "description")


@dataclass(frozen=True)
class RegisterColumns:
    """Which variables the register's derived columns come from, as the pack's
    `record.register` section declares them:

        {"people": "<variable: list of usernames>",
         "metric_codes": "<variable: list of rows>.<key>",
         "gap_status": {"from": "<rows>.<key>", "worst_first": [<status>, …]},
         "due_on": {"from": "<rows>.<date key>", "open_while_empty": "<key>"},
         "metric_gaps": {"from": "<rows>.<key>", "value": "<status key>"},
         "outcomes": "<variable: list of rows>.<outcome key>",
         "verdict": {"from": "<variable>", "on": "<date variable>"}}

    A pack without the section keeps the columns empty."""

    people: str | None = None
    metric_codes: tuple[str, str] | None = None
    gap_status: tuple[str, str, tuple[str, ...]] | None = None
    due_on: tuple[str, str, str | None] | None = None
    metric_gaps: tuple[str, str, str] | None = None
    outcomes: tuple[str, str] | None = None
    verdict: tuple[str, str | None] | None = None

    @classmethod
    def of(cls, declared: Mapping[str, Any] | None) -> RegisterColumns:
        declared = declared or {}

        def path(text: Any) -> tuple[str, str] | None:
            variable, _, key = str(text or "").partition(".")
            return (variable, key) if variable and key else None

        gaps = declared.get("gap_status") or {}
        due = declared.get("due_on") or {}
        gap_path = path(gaps.get("from"))
        due_path = path(due.get("from"))
        metric_gaps = declared.get("metric_gaps") or {}
        metric_path = path(metric_gaps.get("from"))
        verdict = declared.get("verdict") or {}
        return cls(
            metric_gaps=(*metric_path, str(metric_gaps.get("value") or "status"))
            if metric_path
            else None,
            outcomes=path(declared.get("outcomes")),
            verdict=(verdict["from"], verdict.get("on")) if verdict.get("from") else None,
            people=declared.get("people") or None,
            metric_codes=path(declared.get("metric_codes")),
            gap_status=(*gap_path, tuple(gaps.get("worst_first") or ())) if gap_path else None,
            due_on=(*due_path, due.get("open_while_empty")) if due_path else None,
        )

    def values(self, data: Mapping[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.people:
            found["people"] = _members(data.get(self.people))
        if self.metric_codes:
            variable, key = self.metric_codes
            found["metric_codes"] = _members(r.get(key) for r in _rows(data.get(variable)))
        if self.gap_status:
            variable, key, worst_first = self.gap_status
            statuses = {r.get(key) for r in _rows(data.get(variable))}
            found["gap_status"] = next((s for s in worst_first if s in statuses), None)
        if self.due_on:
            variable, key, done = self.due_on
            dates = [
                str(r.get(key))[:10]
                for r in _rows(data.get(variable))
                if r.get(key) and not (done and r.get(done))
            ]
            found["due_on"] = min(dates) if dates else None
        if self.metric_gaps:
            variable, key, status = self.metric_gaps
            found["gaps"] = _pairs((r.get(key), r.get(status)) for r in _rows(data.get(variable)))
        if self.outcomes:
            variable, key = self.outcomes
            kept = sorted(str(r[key]) for r in _rows(data.get(variable)) if _word(r.get(key)))
            found["outcomes"] = f" {' '.join(kept)} " if kept else None
        if self.verdict:
            variable, on = self.verdict
            value = data.get(variable)
            found["verdict"] = str(value)[:16] if _word(value) else None
            found["verdict_quarter"] = (
                quarter_of_text(data.get(on)) if on and found["verdict"] else None
            )
        return found


def quarter_of(at: date) -> str:
    """`2026-Q4`: the quarter the dashboard and the period report group by."""
    return f"{at.year:04d}-Q{(at.month - 1) // 3 + 1}"


def quarter_of_text(value: Any) -> str | None:
    try:
        return quarter_of(date.fromisoformat(str(value)[:10]))
    except ValueError:
        return None


def _word(value: Any) -> bool:
    return isinstance(value, str) and value != "" and " " not in value and ":" not in value


def _pairs(pairs: Any) -> str | None:
    """Each metric's status as ` CODE:status … ` (LIKE '% CODE:status %' finds one)."""
    kept = sorted({f"{code}:{status}" for code, status in pairs if _word(code) and _word(status)})
    return f" {' '.join(kept)} " if kept else None


_columns_of: dict[int, RegisterColumns] = {}


def columns_of(manifest: Mapping[str, Any]) -> RegisterColumns:
    """The register columns a pack manifest (pack.json) declares, parsed once."""
    key = id(manifest)
    found = _columns_of.get(key)
    if found is None:
        found = _columns_of[key] = RegisterColumns.of(
            (manifest.get("record") or {}).get("register")
        )
    return found


def _rows(value: Any) -> list[Mapping[str, Any]]:
    return [r for r in value if isinstance(r, Mapping)] if isinstance(value, list) else []


def _members(values: Any) -> str | None:
    """A list as the register keeps it: ` a b ` (so that LIKE '% a %' finds a member)."""
    if not isinstance(values, list | tuple) and not hasattr(values, "__next__"):
        return None
    members = sorted({str(v) for v in values if v not in (None, "") and " " not in str(v)})
    return f" {' '.join(members)} " if members else None


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
    return RecordRow(record_id, number, status, None, None, None, fields, None, raised_on=at)


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
    columns: RegisterColumns | None = None,
) -> None:
    """The register's columns after a command."""
    for name in FILTER_COLUMNS:
        record.set(name, data.get(name))
    outcomes_before = record.outcomes
    if columns is not None:
        for name, value in columns.values(data).items():
            record.set(name, value)
    record.set(
        "status", status_of(model, completed, completed_elements, active_elements, record.status)
    )
    if record.outcomes != outcomes_before:
        record.set("outcomes_quarter", quarter_of(at) if record.outcomes else None)
    if record.verdict and record.verdict_quarter is None:
        record.set("verdict_quarter", quarter_of(at))
    if completed and record.closed_on is None:
        record.set("closed_on", at)
        record.set("closed_quarter", quarter_of(at))
        if record.raised_on is not None:
            record.set("cycle_days", max(0, (at - record.raised_on).days))
