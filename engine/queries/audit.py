"""Read-only queries of the audit console: instance search, the integrity report of one
instance (hash chain + replay) and the state at one step. Nothing here writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from engine.audit import chain, replay, state
from engine.errors import NotFound
from engine.inputs import parse_id
from engine.pack import Pack
from engine.persistence.models import Event, Instance, Record, User
from engine.queries.instances import definitions_of, event_dicts, instance_view
from engine.queries.views import DefinitionRow, InstanceRow, RecordSummary, view_of

STATUSES = ("running", "completed")
SEARCH_LIMIT = 200


@dataclass
class SearchFilters:
    number: str = ""
    source: str = ""
    started_from: date | None = None
    started_to: date | None = None
    person: str = ""
    status: str = ""
    invalid: list[str] = field(default_factory=list)  # names of fields whose input was ignored

    @classmethod
    def parse(cls, args: Any, sources: Sequence[str]) -> SearchFilters:
        """The filters a query string asks for; `sources` are the values the record's
        source may take (the start form's choices)."""
        found = cls(
            number=(args.get("number") or "").strip(),
            person=(args.get("person") or "").strip(),
        )
        source = args.get("source") or ""
        if source in sources:
            found.source = source
        elif source:
            found.invalid.append("source")
        status = args.get("status") or ""
        if status in STATUSES:
            found.status = status
        elif status:
            found.invalid.append("status")
        for name in ("started_from", "started_to"):
            text = (args.get(name) or "").strip()
            if not text:
                continue
            try:
                setattr(found, name, date.fromisoformat(text))
            except ValueError:
                found.invalid.append(name)
        return found

    @property
    def active(self) -> bool:
        return bool(
            self.number
            or self.source
            or self.started_from
            or self.started_to
            or self.person
            or self.status
        )


@dataclass(frozen=True)
class SearchRow:
    instance: InstanceRow
    record: RecordSummary | None
    events: int


def _day_start(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def search(
    session: Session, filters: SearchFilters, zone: tzinfo, limit: int = SEARCH_LIMIT
) -> tuple[list[SearchRow], bool]:
    """Instances matching every filter, newest first, and whether more than `limit` match.
    Dates are days in the reader's time zone `zone`; `started_to` includes its whole day."""
    events = select(func.count(Event.id)).where(Event.instance_id == Instance.id).scalar_subquery()
    query = select(Instance, Record, events).outerjoin(Record, Record.instance_id == Instance.id)
    if filters.number:
        text = filters.number.upper()
        match = func.upper(Record.number).contains(text, autoescape=True)
        instance_id = parse_id(text.lstrip("#"))
        query = query.where(or_(match, Instance.id == instance_id) if instance_id else match)
    if filters.source:
        query = query.where(Record.source == filters.source)
    if filters.status:
        query = query.where(Instance.status == filters.status)
    if filters.started_from:
        query = query.where(Instance.started_at >= _day_start(filters.started_from, zone))
    if filters.started_to:
        end = _day_start(filters.started_to + timedelta(days=1), zone)
        query = query.where(Instance.started_at < end)
    if filters.person:
        # A username or a display name, any case, in part: "po1", "PO1", "张"; the text
        # is matched as it is (`%` and `_` are escaped, not wildcards).
        person = filters.person.lower()
        people = select(User.username).where(
            or_(
                func.lower(User.username).contains(person, autoescape=True),
                func.lower(User.display_name).contains(person, autoescape=True),
            )
        )
        acted = exists().where(Event.instance_id == Instance.id, Event.actor.in_(people))
        query = query.where(or_(Instance.started_by.in_(people), acted))
    rows = session.execute(query.order_by(Instance.id.desc()).limit(limit + 1)).unique().all()
    found = [
        SearchRow(
            view_of(InstanceRow, i),
            view_of(RecordSummary, r, fields=dict(r.fields or {})) if r is not None else None,
            int(n or 0),
        )
        for i, r, n in rows[:limit]
    ]
    return found, len(rows) > limit


@dataclass(frozen=True)
class AuditView:
    instance: InstanceRow
    record: RecordSummary | None
    definitions: list[DefinitionRow]  # the pinned one first, then called processes
    verification: chain.Verification
    replay: replay.ReplayResult
    events: list[dict[str, Any]]
    checked_at: datetime


def audit_view(
    session: Session,
    pack: Pack,
    instance_id: int,
    verification: chain.Verification | None = None,
) -> AuditView:
    """`verification`: the instance's, when the caller checked more than the chain and
    state (its attachments)."""
    view = instance_view(session, instance_id, with_events=False)
    return AuditView(
        instance=view.instance,
        record=view.record,
        definitions=definitions_of(session, view.instance),
        verification=verification or state.verify(session, instance_id),
        replay=replay.replay(session, pack, instance_id),
        events=event_dicts(session, instance_id),
        checked_at=datetime.now(UTC),
    )


def initial_step(result: replay.ReplayResult, requested: int | None) -> int:
    """The step the page opens at: the one asked for, else the last one, or after a
    mismatch the last step the replay could still vouch for."""
    if result.steps == 0:
        return 0
    default = result.steps
    if result.mismatch is not None:
        default = result.mismatch.seq - 1
    return max(1, min(requested if requested is not None else default, result.steps))


@dataclass
class StepView:
    result: replay.ReplayResult
    before: dict[str, Any]  # the previous step's value of each changed key
    broken_at: int | None  # first broken link of the hash chain, if any
    event: dict[str, Any] | None  # the recorded event of this step (also past a mismatch)

    @property
    def state(self) -> replay.StepState | None:
        return self.result.state

    def as_dict(self) -> dict[str, Any]:
        return {**self.result.as_dict(), "before": self.before}


def step_view(
    session: Session,
    pack: Pack,
    instance_id: int,
    step: int,
    replayed: replay.ReplayResult | None = None,
    verification: chain.Verification | None = None,
) -> StepView:
    """The replayed state at `step` and, for its changed keys, the values one step earlier.
    `replayed` and `verification` are reused when the caller has them already."""
    if session.get(Instance, instance_id) is None:
        raise NotFound(f"no instance {instance_id}")
    if replayed is not None and replayed.step == step:
        result = replayed
    else:
        result = replay.replay(session, pack, instance_id, step, to_the_end=False)
    verification = verification or chain.verify(session, instance_id)
    before = result.state.before if result.state is not None else {}
    row = session.scalar(select(Event).where(Event.instance_id == instance_id, Event.seq == step))
    event = chain.describe(row) if row is not None else None
    return StepView(result, before, verification.broken_at, event)
