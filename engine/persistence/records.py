"""The register's row of an instance as commands read and write it (the record's
logic is engine.projections.records)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from engine.persistence.database import Writes
from engine.persistence.models import Record, table

RECORD_TABLE = table(Record)


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
    people: str | None = None
    metric_codes: str | None = None
    gap_status: str | None = None
    due_on: str | None = None
    raised_on: datetime | None = None
    gaps: str | None = None
    outcomes: str | None = None
    outcomes_quarter: str | None = None
    verdict: str | None = None
    verdict_quarter: str | None = None
    closed_quarter: str | None = None
    cycle_days: int | None = None
    changes: dict[str, Any] = field(default_factory=dict)

    def set(self, column: str, value: Any) -> None:
        if getattr(self, column) != value:
            setattr(self, column, value)
            self.changes[column] = value


RECORD_ROW_COLUMNS = (
    RECORD_TABLE.c.id,
    RECORD_TABLE.c.number,
    RECORD_TABLE.c.status,
    RECORD_TABLE.c.source,
    RECORD_TABLE.c.reference,
    RECORD_TABLE.c.description,
    RECORD_TABLE.c.closed_on,
    RECORD_TABLE.c.people,
    RECORD_TABLE.c.metric_codes,
    RECORD_TABLE.c.gap_status,
    RECORD_TABLE.c.due_on,
    RECORD_TABLE.c.raised_on,
    RECORD_TABLE.c.gaps,
    RECORD_TABLE.c.outcomes,
    RECORD_TABLE.c.outcomes_quarter,
    RECORD_TABLE.c.verdict,
    RECORD_TABLE.c.verdict_quarter,
    RECORD_TABLE.c.closed_quarter,
    RECORD_TABLE.c.cycle_days,
)
# The columns the dashboard's figures read, derived by engine.projections.records.
DASHBOARD_COLUMNS = (
    "gaps",
    "outcomes",
    "outcomes_quarter",
    "verdict",
    "verdict_quarter",
    "closed_quarter",
    "cycle_days",
)
FIELDS_OF = select(RECORD_TABLE.c.fields).where(RECORD_TABLE.c.id == bindparam("record_id"))
_UPDATE_RECORD = update(RECORD_TABLE).where(RECORD_TABLE.c.id == bindparam("row_id"))


def row_from(values: Mapping[str, Any]) -> RecordRow | None:
    """A RecordRow from a row that selected RECORD_ROW_COLUMNS (labelled `record_*`);
    None when the instance keeps no record."""
    if values.get("record_id") is None:
        return None
    return RecordRow(
        id=values["record_id"],
        number=values["record_number"],
        status=values["record_status"],
        source=values["record_source"],
        reference=values["record_reference"],
        description=values["record_description"],
        fields=None,
        closed_on=values["record_closed_on"],
        people=values.get("record_people"),
        metric_codes=values.get("record_metric_codes"),
        gap_status=values.get("record_gap_status"),
        due_on=values.get("record_due_on"),
        raised_on=values.get("record_raised_on"),
        gaps=values.get("record_gaps"),
        outcomes=values.get("record_outcomes"),
        outcomes_quarter=values.get("record_outcomes_quarter"),
        verdict=values.get("record_verdict"),
        verdict_quarter=values.get("record_verdict_quarter"),
        closed_quarter=values.get("record_closed_quarter"),
        cycle_days=values.get("record_cycle_days"),
    )


def labelled_columns() -> list[Any]:
    return [column.label(f"record_{column.name}") for column in RECORD_ROW_COLUMNS]


def write(session: Session, record: RecordRow) -> None:
    if record.changes:
        Writes.of(session).add(_UPDATE_RECORD, {"row_id": record.id, **record.changes})
        record.changes = {}
