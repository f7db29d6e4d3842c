"""The manager's dashboard and the period report (周期报告, the input to the management
review): figures over the record table's projected columns and the task projection,
each a GROUP BY on an index, never a read of workflow state or instance data.

The columns they read are kept by the commands that change a record
(engine.projections.records): its stage and source, each metric's gap status, the
calls' outcomes and the quarter they were recorded in, the verification's verdict and
its quarter, the quarter it closed in and the days it took.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, union
from sqlalchemy.orm import Session

from engine.persistence.models import HumanTask, Record
from engine.projections.records import quarter_of

QUARTERS_SHOWN = 8
_QUARTER = re.compile(r"(\d{4})-Q([1-4])")


def parse_quarter(text: str) -> tuple[int, int] | None:
    """(year, quarter) of `2026-Q4`; None for anything else."""
    found = _QUARTER.fullmatch(text or "")
    if not found or not 1900 <= int(found.group(1)) <= 9999:
        return None
    return int(found.group(1)), int(found.group(2))


def quarter_bounds(year: int, quarter: int) -> tuple[datetime, datetime]:
    """The first moment of the quarter and of the next, in UTC."""
    start = datetime(year, 3 * quarter - 2, 1, tzinfo=UTC)
    end = (
        datetime(year + 1, 1, 1, tzinfo=UTC)
        if quarter == 4
        else datetime(year, 3 * quarter + 1, 1, tzinfo=UTC)
    )
    return start, end


def recent_quarters(today: date, count: int = QUARTERS_SHOWN) -> list[str]:
    """The last `count` quarters up to today's, oldest first."""
    index = today.year * 4 + (today.month - 1) // 3
    return [f"{i // 4:04d}-Q{i % 4 + 1}" for i in range(index - count + 1, index + 1)]


def _words(text: str | None) -> list[str]:
    return (text or "").split()


def percentile(histogram: Mapping[int, int], percent: int) -> int | None:
    """The nearest-rank percentile (the smallest value with at least `percent` % of the
    values at or below it) of values given as value → how many."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, -(-percent * total // 100))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)


@dataclass(frozen=True)
class OverdueTasks:
    role: str | None
    person: str | None  # who has it (claimed or assigned); None: anyone in the role
    count: int


@dataclass(frozen=True)
class CycleTime:
    quarter: str
    closed: int
    median_days: int | None
    p90_days: int | None


@dataclass(frozen=True)
class Dashboard:
    open_by_stage: dict[str, int]
    overdue_tasks: list[OverdueTasks]
    overdue_records: int
    gap_status: dict[str, dict[str, int]]  # metric → status → open improvements
    cycle_time: list[CycleTime]
    outcomes: dict[str, dict[str, int]]  # quarter → outcome → calls
    sources: dict[str, int]
    verdicts: dict[str, dict[str, int]]  # quarter → verdict → improvements
    quarters: list[str]
    as_of: datetime


def _scope(scope: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    return [scope] if scope is not None else []


def open_by_stage(session: Session, scope: ColumnElement[bool] | None = None) -> dict[str, int]:
    rows = session.execute(
        select(Record.status, func.count())
        .where(Record.closed_on.is_(None), *_scope(scope))
        .group_by(Record.status)
    )
    return {stage: int(count) for stage, count in rows}


def overdue_tasks(session: Session, now: datetime) -> list[OverdueTasks]:
    """Open tasks past their due time by role and by who has them, most first."""
    person = func.coalesce(HumanTask.claimed_by, HumanTask.assignee)
    rows = session.execute(
        select(HumanTask.role, person, func.count())
        .where(HumanTask.status == "open", HumanTask.due_at < now)
        .group_by(HumanTask.role, person)
    )
    found = [OverdueTasks(role, who, int(count)) for role, who, count in rows]
    return sorted(found, key=lambda r: (-r.count, r.role or "", r.person or ""))


def overdue_records(session: Session, now: datetime) -> int:
    """The open improvements the register's `overdue` filter finds
    (engine.queries.register.overdue_condition), counted from both ends: the records
    whose measures are past due, and the records of the tasks past due; each read off
    an index over what is late only."""
    late_measures = select(Record.instance_id).where(
        Record.closed_on.is_(None), Record.due_on < now.date().isoformat()
    )
    # An open task means its instance still runs, so its record is not closed: asking
    # only whether the instance keeps a record reads the unique index alone (a
    # called process's tasks belong to an instance without one).
    late_tasks = select(HumanTask.instance_id).where(
        HumanTask.status == "open",
        HumanTask.due_at < now,
        exists().where(Record.instance_id == HumanTask.instance_id),
    )
    found = session.scalar(
        select(func.count()).select_from(union(late_measures, late_tasks).subquery())
    )
    return int(found or 0)


def _tally_pairs(rows: Iterable[tuple[str | None, int]]) -> dict[str, dict[str, int]]:
    """` CODE:status … ` columns with their counts → code → status → count."""
    found: dict[str, Counter[str]] = {}
    for text, count in rows:
        for pair in _words(text):
            code, _, status = pair.partition(":")
            found.setdefault(code, Counter())[status] += int(count)
    return {code: dict(found[code]) for code in sorted(found)}


def gap_status(
    session: Session,
    where: Iterable[ColumnElement[bool]] = (),
) -> dict[str, dict[str, int]]:
    """Each metric's gap status over the improvements `where` picks (by default the open
    ones): how many stand at achieved, improving, flat, regressing."""
    conditions = list(where) or [Record.closed_on.is_(None)]
    rows = session.execute(
        select(Record.gaps, func.count())
        .where(Record.gaps.is_not(None), *conditions)
        .group_by(Record.gaps)
    )
    return _tally_pairs((gaps, count) for gaps, count in rows)


def cycle_times(session: Session, quarters: list[str]) -> list[CycleTime]:
    """Median and 90th percentile of the days from start to close, per closing quarter."""
    histograms: dict[str, dict[int, int]] = {q: {} for q in quarters}
    rows = session.execute(
        select(Record.closed_quarter, Record.cycle_days, func.count())
        .where(Record.closed_quarter.in_(quarters), Record.cycle_days.is_not(None))
        .group_by(Record.closed_quarter, Record.cycle_days)
    )
    for quarter, days, count in rows:
        histograms[str(quarter)][int(days or 0)] = int(count)
    return [
        CycleTime(
            q,
            sum(histograms[q].values()),
            percentile(histograms[q], 50),
            percentile(histograms[q], 90),
        )
        for q in quarters
    ]


def outcomes(session: Session, quarters: list[str]) -> dict[str, dict[str, int]]:
    """The calls' outcomes (e.g. implemented / rejected / failed) per quarter recorded."""
    found: dict[str, Counter[str]] = {q: Counter() for q in quarters}
    rows = session.execute(
        select(Record.outcomes_quarter, Record.outcomes, func.count())
        .where(Record.outcomes_quarter.in_(quarters), Record.outcomes.is_not(None))
        .group_by(Record.outcomes_quarter, Record.outcomes)
    )
    for quarter, text, count in rows:
        for outcome in _words(text):
            found[str(quarter)][outcome] += int(count)
    return {q: dict(found[q]) for q in quarters}


def sources(session: Session, where: Iterable[ColumnElement[bool]] = ()) -> dict[str, int]:
    rows = session.execute(
        select(Record.source, func.count()).where(*where).group_by(Record.source)
    )
    return {source or "": int(count) for source, count in rows}


def verdicts(session: Session, quarters: list[str]) -> dict[str, dict[str, int]]:
    """The verification's verdicts (effective / ineffective) per quarter verified."""
    found: dict[str, dict[str, int]] = {q: {} for q in quarters}
    rows = session.execute(
        select(Record.verdict_quarter, Record.verdict, func.count())
        .where(Record.verdict_quarter.in_(quarters), Record.verdict.is_not(None))
        .group_by(Record.verdict_quarter, Record.verdict)
    )
    for quarter, verdict, count in rows:
        found[str(quarter)][str(verdict)] = int(count)
    return found


def dashboard(session: Session, now: datetime) -> Dashboard:
    quarters = recent_quarters(now.date())
    return Dashboard(
        open_by_stage=open_by_stage(session),
        overdue_tasks=overdue_tasks(session, now),
        overdue_records=overdue_records(session, now),
        gap_status=gap_status(session),
        cycle_time=cycle_times(session, quarters),
        outcomes=outcomes(session, quarters),
        sources=sources(session),
        verdicts=verdicts(session, quarters),
        quarters=quarters,
        as_of=now,
    )


@dataclass(frozen=True)
class PeriodReport:
    """周期报告: what happened to improvements in one quarter (管理评审输入)."""

    quarter: str
    start: datetime
    end: datetime
    as_of: datetime
    opened: dict[str, dict[str, int]]  # source → stage now → improvements raised
    closed: dict[str, dict[str, int]]  # source → end status → improvements closed
    gaps_closed: dict[str, dict[str, int]]  # metric → status, of those closed
    cycle_time: CycleTime
    outcomes: dict[str, int]
    verdicts: dict[str, int]
    overdue_tasks: list[OverdueTasks]
    overdue_records: int
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()


def _by_source(rows: Iterable[tuple[str | None, str, int]]) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for source, status, count in rows:
        found.setdefault(source or "", {})[status] = int(count)
    return found


def period_report(session: Session, year: int, quarter: int, now: datetime) -> PeriodReport:
    start, end = quarter_bounds(year, quarter)
    name = f"{year:04d}-Q{quarter}"
    opened = _by_source(
        session.execute(
            select(Record.source, Record.status, func.count())
            .where(Record.raised_on >= start, Record.raised_on < end)
            .group_by(Record.source, Record.status)
        )
    )
    closed = _by_source(
        session.execute(
            select(Record.source, Record.status, func.count())
            .where(Record.closed_quarter == name)
            .group_by(Record.source, Record.status)
        )
    )
    gaps_closed = gap_status(session, [Record.closed_quarter == name])
    cycle = cycle_times(session, [name])[0]
    report_outcomes = outcomes(session, [name])[name]
    report_verdicts = verdicts(session, [name])[name]
    # Overdue work is what is late now: a past quarter's lateness is not kept.
    return PeriodReport(
        quarter=name,
        start=start,
        end=end,
        as_of=now,
        opened=opened,
        closed=closed,
        gaps_closed=gaps_closed,
        cycle_time=cycle,
        outcomes=report_outcomes,
        verdicts=report_verdicts,
        overdue_tasks=overdue_tasks(session, now),
        overdue_records=overdue_records(session, now),
        totals={
            "opened": sum(sum(v.values()) for v in opened.values()),
            "closed": sum(sum(v.values()) for v in closed.values()),
            "gaps_achieved": sum(v.get("achieved", 0) for v in gaps_closed.values()),
            "calls": sum(report_outcomes.values()),
            "verified": sum(report_verdicts.values()),
        },
    )


def current_quarter(now: datetime) -> str:
    return quarter_of(now.date())


def as_json(value: Any) -> Any:
    """A figure as JSON-ready data (datetimes as ISO text)."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return as_json(asdict(value))
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
