"""The register of records (服务改进记录台账) and metric readings: filtered, sorted and
paged in SQL on the record table's indexed columns, never by reading workflow state.
Each record as the API shows it: its number, status and the instance variables the
data dictionary marks as the record's, plus its logged entries."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, and_, cast, exists, func, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.persistence.models import Event, HumanTask, Instance, MetricValue, Record

SORTS: Mapping[str, Any] = {
    "number": Record.number,
    "raised_on": Record.raised_on,
    "closed_on": Record.closed_on,
    "stage": Record.status,
    "source": Record.source,
    "owner": Record.raised_by,
    "due_on": Record.due_on,
}
STATES = ("open", "closed")
_QUARTER = re.compile(r"\d{4}-Q[1-4]")
_WORD = re.compile(r"[A-Za-z0-9_.:-]+")
PER_PAGE = 50
MAX_PER_PAGE = 1000


@dataclass(frozen=True)
class RegisterFilter:
    """What the register page, its export and the register JSON filter by."""

    status: str | None = None  # open | closed
    stage: str | None = None  # the record status the diagram declares
    source: str | None = None
    year: int | None = None
    owner: str | None = None
    process_owner: str | None = None
    overdue: bool = False
    metric: str | None = None
    q: str | None = None
    # the dashboard's and the period report's figures, each a filter of its own
    opened: str | None = None  # quarter raised in, `2026-Q4`
    closed: str | None = None  # quarter closed in
    gap: str | None = None  # a metric's gap status, `AVAIL:regressing`
    outcome: str | None = None  # a call's outcome, e.g. failed
    outcomes_in: str | None = None  # quarter the outcomes were recorded in
    verdict: str | None = None  # the verification's, e.g. effective
    verified_in: str | None = None  # quarter verified in
    sort: str = "number"
    descending: bool = True
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def from_args(cls, args: Mapping[str, Any], per_page: int = PER_PAGE) -> RegisterFilter:
        """Filters from query arguments; what cannot be understood is left out."""

        def text(name: str, limit: int = 200) -> str | None:
            value = str(args.get(name) or "").strip()
            return value[:limit] or None

        def number(name: str, low: int, high: int) -> int | None:
            try:
                value = int(str(args.get(name) or ""))
            except ValueError:
                return None
            return value if low <= value <= high else None

        # `sort=-raised_on`, or `sort=raised_on&order=asc`; newest first unless told
        wanted = text("sort", 40) or "number"
        sort = wanted.lstrip("-")
        descending = wanted.startswith("-") or text("order", 8) != "asc"
        if sort not in SORTS:
            sort, descending = "number", True
        status = text("status")

        def quarter(name: str) -> str | None:
            value = text(name, 7)
            return value if value and _QUARTER.fullmatch(value) else None

        def word(name: str) -> str | None:
            value = text(name, 48)
            return value if value and _WORD.fullmatch(value) else None

        return cls(
            opened=quarter("opened"),
            closed=quarter("closed"),
            gap=word("gap"),
            outcome=word("outcome"),
            outcomes_in=quarter("outcomes_in"),
            verdict=word("verdict"),
            verified_in=quarter("verified_in"),
            status=status if status in STATES else None,
            stage=text("stage", 32),
            source=text("source", 32),
            year=number("year", 1900, 9999),
            owner=text("owner", 64),
            process_owner=text("process_owner", 64),
            overdue=str(args.get("overdue") or "").lower() in ("1", "true", "yes", "on"),
            metric=text("metric", 32),
            q=text("q"),
            sort=sort,
            descending=descending,
            page=number("page", 1, 10**6) or 1,
            per_page=number("per_page", 1, MAX_PER_PAGE) or per_page,
        )

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query arguments that give this filter (with `changes`), empty ones left out."""
        values = asdict(replace(self, **changes))
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name in ("descending",) or value in (None, "", False):
                continue
            if name == "sort":
                continue
            if name == "page" and value == 1:
                continue
            if name == "per_page" and value == PER_PAGE:
                continue
            out[name] = "1" if value is True else value
        chosen = replace(self, **changes)
        if (chosen.sort, chosen.descending) != ("number", True):
            out["sort"] = chosen.sort
            out["order"] = "desc" if chosen.descending else "asc"
        return out


@dataclass(frozen=True)
class RegisterRow:
    number: str
    instance_id: int
    description: str | None
    source: str | None
    reference: str | None
    owner: str | None
    stage: str
    closed: bool
    raised_on: datetime
    closed_on: datetime | None
    gap_status: str | None
    due_on: str | None
    people: tuple[str, ...]
    metric_codes: tuple[str, ...]
    overdue: bool


@dataclass(frozen=True)
class RegisterPage:
    rows: list[RegisterRow]
    total: int
    page: int
    per_page: int
    by_stage: dict[str, int]  # counts of every record the filter finds but for its stage
    by_state: dict[str, int]  # open / closed, likewise but for its status

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _members(text: str | None) -> tuple[str, ...]:
    return tuple((text or "").split())


def readable_by(actor: Actor) -> ColumnElement[bool]:
    """Records of instances `actor` takes part in (engine.access): raised it, acted in
    it, is or was assigned a task, or may take one of its open tasks."""
    me = actor.username
    return or_(
        Record.raised_by == me,
        exists().where(Event.instance_id == Record.instance_id, Event.actor == me),
        exists().where(
            HumanTask.instance_id == Record.instance_id,
            or_(
                HumanTask.assignee == me,
                HumanTask.claimed_by == me,
                HumanTask.completed_by == me,
                and_(
                    HumanTask.status == "open",
                    HumanTask.role.in_(sorted(actor.roles)),
                    HumanTask.assignee.is_(None),
                ),
            ),
        ),
    )


def _late_task(now: datetime) -> ColumnElement[bool]:
    return exists().where(
        HumanTask.instance_id == Record.instance_id,
        HumanTask.status == "open",
        HumanTask.due_at < now,
    )


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    """Open, and a measure's due date or an open task's due time has passed."""
    return and_(
        Record.closed_on.is_(None),
        or_(Record.due_on < now.date().isoformat(), _late_task(now)),
    )


def _figure_conditions(chosen: RegisterFilter) -> list[ColumnElement[bool]]:
    """The filters the dashboard's and the period report's figures link with."""
    found: list[ColumnElement[bool]] = []
    if chosen.opened:
        year, quarter = int(chosen.opened[:4]), int(chosen.opened[-1])
        start = datetime(year, 3 * quarter - 2, 1, tzinfo=UTC)
        end = datetime(year + quarter // 4, (3 * quarter) % 12 + 1, 1, tzinfo=UTC)
        found.append(Record.raised_on >= start)
        found.append(Record.raised_on < end)
    if chosen.closed:
        found.append(Record.closed_quarter == chosen.closed)
    if chosen.gap:
        found.append(Record.gaps.contains(f" {chosen.gap} ", autoescape=True))
    if chosen.outcome:
        found.append(Record.outcomes.contains(f" {chosen.outcome} ", autoescape=True))
    if chosen.outcomes_in:
        found.append(Record.outcomes_quarter == chosen.outcomes_in)
    if chosen.verdict:
        found.append(Record.verdict == chosen.verdict)
    if chosen.verified_in:
        found.append(Record.verdict_quarter == chosen.verified_in)
    return found


def conditions(
    chosen: RegisterFilter, now: datetime, leave_out: Sequence[str] = ()
) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if chosen.status == "open" and "status" not in leave_out:
        found.append(Record.closed_on.is_(None))
    if chosen.status == "closed" and "status" not in leave_out:
        found.append(Record.closed_on.is_not(None))
    if chosen.stage and "stage" not in leave_out:
        found.append(Record.status == chosen.stage)
    if chosen.source:
        found.append(Record.source == chosen.source)
    if chosen.year:
        found.append(Record.raised_on >= datetime(chosen.year, 1, 1, tzinfo=UTC))
        found.append(Record.raised_on < datetime(chosen.year + 1, 1, 1, tzinfo=UTC))
    if chosen.owner:
        found.append(Record.raised_by == chosen.owner)
    if chosen.process_owner:
        found.append(Record.people.contains(f" {chosen.process_owner} ", autoescape=True))
    if chosen.metric:
        found.append(Record.metric_codes.contains(f" {chosen.metric} ", autoescape=True))
    if chosen.overdue:
        found.append(overdue_condition(now))
    found.extend(_figure_conditions(chosen))
    if chosen.q:
        found.append(
            or_(
                Record.number.icontains(chosen.q, autoescape=True),
                Record.reference.icontains(chosen.q, autoescape=True),
                Record.description.icontains(chosen.q, autoescape=True),
            )
        )
    return found


def _scope(actor_scope: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    return [actor_scope] if actor_scope is not None else []


def _counts(
    session: Session,
    chosen: RegisterFilter,
    now: datetime,
    actor_scope: ColumnElement[bool] | None,
) -> tuple[dict[str, int], dict[str, int], int | None]:
    """Records per stage (the filter but for its stage) and per state (but for its
    status), and the total when those two give it (neither stage nor status chosen:
    one scan answers all three)."""
    scope = _scope(actor_scope)
    is_open = Record.closed_on.is_(None)
    by_stage: dict[str, int] = {}
    by_state = {"open": 0, "closed": 0}
    if not chosen.stage and not chosen.status:
        for stage, still_open, count in session.execute(
            select(Record.status, is_open, func.count())
            .where(*conditions(chosen, now), *scope)
            .group_by(Record.status, is_open)
        ):
            by_stage[stage] = by_stage.get(stage, 0) + int(count)
            by_state["open" if still_open else "closed"] += int(count)
        return by_stage, by_state, sum(by_state.values())
    for stage, count in session.execute(
        select(Record.status, func.count())
        .where(*conditions(chosen, now, ("stage",)), *scope)
        .group_by(Record.status)
    ):
        by_stage[stage] = int(count)
    for still_open, count in session.execute(
        select(is_open, func.count())
        .where(*conditions(chosen, now, ("status",)), *scope)
        .group_by(is_open)
    ):
        by_state["open" if still_open else "closed"] += int(count)
    return by_stage, by_state, None


def register_page(
    session: Session,
    chosen: RegisterFilter,
    now: datetime,
    actor_scope: ColumnElement[bool] | None = None,
) -> RegisterPage:
    """One page of the register, its total and the counts per stage and state."""
    where = [*conditions(chosen, now), *_scope(actor_scope)]
    by_stage, by_state, total = _counts(session, chosen, now, actor_scope)
    if total is None:
        total = session.scalar(select(func.count()).select_from(Record).where(*where)) or 0
    column = SORTS[chosen.sort]
    order = [column.desc() if chosen.descending else column.asc(), Record.id.desc()]
    if chosen.sort in ("closed_on", "due_on"):
        order.insert(0, column.is_(None))  # records without one last, either way
    offset = (chosen.page - 1) * chosen.per_page
    records = session.execute(
        select(
            Record.number,
            Record.instance_id,
            Record.description,
            Record.source,
            Record.reference,
            Record.raised_by,
            Record.status,
            Record.raised_on,
            Record.closed_on,
            Record.gap_status,
            Record.due_on,
            Record.people,
            Record.metric_codes,
        )
        .where(*where)
        .order_by(*order)
        .limit(chosen.per_page)
        .offset(offset)
    ).all()
    ids = [r.instance_id for r in records]
    late = (
        set(
            session.scalars(
                select(HumanTask.instance_id)
                .where(
                    HumanTask.instance_id.in_(ids),
                    HumanTask.status == "open",
                    HumanTask.due_at < now,
                )
                .distinct()
            )
        )
        if ids
        else set()
    )
    today = now.date().isoformat()
    rows = [
        RegisterRow(
            number=r.number,
            instance_id=r.instance_id,
            description=r.description,
            source=r.source,
            reference=r.reference,
            owner=r.raised_by,
            stage=r.status,
            closed=r.closed_on is not None,
            raised_on=r.raised_on,
            closed_on=r.closed_on,
            gap_status=r.gap_status,
            due_on=r.due_on,
            people=_members(r.people),
            metric_codes=_members(r.metric_codes),
            overdue=r.closed_on is None
            and (bool(r.due_on and r.due_on < today) or r.instance_id in late),
        )
        for r in records
    ]
    return RegisterPage(rows, int(total), chosen.page, chosen.per_page, by_stage, by_state)


def years(session: Session, actor_scope: ColumnElement[bool] | None = None) -> list[int]:
    """The years records were raised in, newest first (the year filter's choices)."""
    # Two queries: each of min and max alone is one step down the raised_on index,
    # together they are a scan of it.
    scope = _scope(actor_scope)
    low = session.scalar(select(func.min(Record.raised_on)).where(*scope))
    high = session.scalar(select(func.max(Record.raised_on)).where(*scope))
    if low is None or high is None:
        return []
    return list(range(high.year, low.year - 1, -1))


def describe(record: Record, data: dict[str, Any], record_fields: Sequence[str]) -> dict[str, Any]:
    """The record as the register and exports show it: the record's variables from the
    instance data, its columns, and its logged entries (reviews, monitoring)."""
    content = {name: data.get(name) for name in record_fields if name in data}
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


def records(
    session: Session,
    record_fields: Sequence[str],
    chosen: RegisterFilter | None = None,
    now: datetime | None = None,
    actor_scope: ColumnElement[bool] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the register as the API shows it, and the total the filter finds."""
    chosen = chosen or RegisterFilter(per_page=MAX_PER_PAGE)
    now = now or datetime.now(UTC)
    where = [*conditions(chosen, now), *_scope(actor_scope)]
    total = session.scalar(select(func.count()).select_from(Record).where(*where)) or 0
    column = SORTS[chosen.sort]
    # Each of the record's variables by its JSON path: decoding whole instance data
    # (every proposal and collected report) would be most of the request.
    names = list(record_fields)
    as_object = session.get_bind().dialect.name == "postgresql"
    if as_object:
        # PostgreSQL parses a json value again for every `->`: pick the variables out of
        # one jsonb of each instance's data instead.
        pairs = func.jsonb_each(cast(Instance.data, JSONB)).table_valued("key", "value")
        picked = (
            select(func.jsonb_object_agg(pairs.c.key, pairs.c.value))
            .where(pairs.c.key.in_(names))
            .scalar_subquery()
        )
        columns: list[Any] = [type_coerce(picked, JSON).label("picked")]
    else:
        columns = [Instance.data[name].label(f"v{n}") for n, name in enumerate(names)]
    rows = session.execute(
        select(Record, *columns)
        .join(Instance, Instance.id == Record.instance_id)
        .where(*where)
        .order_by(column.desc() if chosen.descending else column.asc(), Record.id.desc())
        .limit(chosen.per_page)
        .offset((chosen.page - 1) * chosen.per_page)
    )
    found = []
    for record, *values in rows:
        if as_object:
            held = values[0] or {}
            values = [held.get(name) for name in names]
        # every record variable, null when the instance holds none (yet)
        found.append(describe(record, dict(zip(names, values, strict=True)), names))
    return found, int(total)


def readings(session: Session, code: str | None = None) -> list[dict[str, Any]]:
    query = select(MetricValue).order_by(MetricValue.recorded_at, MetricValue.id)
    if code:
        query = query.where(MetricValue.code == code)
    return [
        {
            "code": v.code,
            "value": v.value,
            "period": v.period,
            "instance_id": v.instance_id,
            "recorded_by": v.recorded_by,
            "recorded_at": v.recorded_at.isoformat(),
        }
        for v in session.scalars(query)
    ]


def instance_of(session: Session, number: str) -> int | None:
    return session.scalar(select(Record.instance_id).where(Record.number == number))
