"""Periodic review schedules: administrators keep them; the worker starts their reviews.

Each pass of the worker asks every active schedule which period the clock is in and
starts that period's instance unless it has one. Exactly once, however many workers
run at the same moment: the command first inserts the (schedule, period) row, whose
unique key lets only one transaction have it (on PostgreSQL the other waits for the
first to commit and then inserts nothing; on SQLite writers queue on the database
lock), and starts the instance in that same transaction. A start that fails rolls
back with its row, is noted on the schedule for the administrator, and is tried again
on the next pass.

Only the period the clock is in is started: a worker that was down for two quarters
opens one review, for the present quarter, not three.

The instance is started on the owner's authority, recorded as `<owner> via schedule`
(as `csi … --by` records `<user> via cli:<os user>`), with the initial data the pack's
review rule gives (engine.pack.ScheduledReview)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from engine import recurrence
from engine.access import Actor
from engine.commands.context import CommandContext, unit_of_work
from engine.commands.start import start_in
from engine.errors import Conflict, DomainError, NotFound, ValidationFailed
from engine.pack import ScheduledReview
from engine.persistence.models import ReviewRun, ReviewSchedule, User, table
from engine.workflow import definitions

log = logging.getLogger(__name__)

RUN = table(ReviewRun)
SCHEDULE = table(ReviewSchedule)

# Error codes in ValidationFailed.details (the web layer words them)
REQUIRED = "required"
TOO_LONG = "too_long"
INVALID_PERIOD = "invalid_period"
UNKNOWN_PROCESS = "unknown_process"
UNKNOWN_USER = "unknown_user"
OWNER_MAY_NOT_START = "owner_may_not_start"
MAX_NAME = 128
MAX_DESCRIPTION = 2000
MAX_PROCESS_OWNERS = 50


def _active_user(session: Session, username: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    return user if user is not None and user.active else None


def _starter_lanes(session: Session, process_id: str) -> tuple[str, ...]:
    """The lanes of the process's start event (NotFound when it is not deployed)."""
    definition = definitions.latest(session, process_id)
    model = definitions.spec_for_instance(
        session, definition.id, definitions.pin_called(session, definition)
    ).models.get(process_id)
    return tuple(model.starter_lanes) if model is not None else ()


def _check(
    ctx: CommandContext, session: Session, values: dict[str, Any], now: datetime
) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    name = str(values.get("name") or "").strip()
    if not name:
        errors["name"] = [REQUIRED]
    elif len(name) > MAX_NAME:
        errors["name"] = [TOO_LONG]
    process_id = str(values.get("process_id") or ctx.pack.main_process or "")
    starter_lanes: tuple[str, ...] = ()
    try:
        starter_lanes = _starter_lanes(session, process_id)
    except DomainError:
        errors["process_id"] = [UNKNOWN_PROCESS]
    period = str(values.get("period") or "").strip()
    rule = ""
    try:
        rule = recurrence.normalise(period, ZoneInfo(ctx.timezone), now)
    except recurrence.InvalidRecurrence as exc:
        errors["period"] = [INVALID_PERIOD, exc.message]
    owner = str(values.get("owner") or "").strip()
    found = _active_user(session, owner) if owner else None
    if not owner:
        errors["owner"] = [REQUIRED]
    elif found is None:
        errors["owner"] = [UNKNOWN_USER]
    elif "process_id" not in errors and not ctx.policy.may_start(Actor.of(found), starter_lanes):
        errors["owner"] = [OWNER_MAY_NOT_START]
    owners = [str(o).strip() for o in values.get("process_owners") or [] if str(o).strip()]
    owners = list(dict.fromkeys(owners))[:MAX_PROCESS_OWNERS]
    if any(_active_user(session, o) is None for o in owners):
        errors["process_owners"] = [UNKNOWN_USER]
    description = str(values.get("description") or "").strip()
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = [TOO_LONG]
    if errors:
        raise ValidationFailed("the schedule is not valid", errors)
    return {
        "name": name,
        "process_id": process_id,
        "period": period,
        "recurrence": rule,
        "owner": owner,
        "process_owners": owners,
        "description": description,
        "active": bool(values.get("active", True)),
    }


def save_schedule(
    ctx: CommandContext, actor: Actor, schedule_id: int | None, values: dict[str, Any]
) -> int:
    """Create (`schedule_id` None) or change a schedule; returns its id. A changed
    period keeps the runs already made: a period that has its instance keeps it."""
    ctx.policy.require_administer(actor)
    now = ctx.clock()
    with ctx.db.transaction() as session:
        clean = _check(ctx, session, values, now)
        if schedule_id is None:
            row = ReviewSchedule(**clean, created_by=actor.username, created_at=now, updated_at=now)
            session.add(row)
            session.flush()
            return row.id
        found = session.get(ReviewSchedule, schedule_id, with_for_update=True)
        if found is None:
            raise NotFound(f"no schedule {schedule_id}")
        if clean["recurrence"] != found.recurrence and clean["period"] == found.period:
            clean["recurrence"] = found.recurrence  # the same named choice: same periods
        for key, value in clean.items():
            setattr(found, key, value)
        found.updated_at = now
        found.last_error = None
        return found.id


def set_active(ctx: CommandContext, actor: Actor, schedule_id: int, active: bool) -> None:
    ctx.policy.require_administer(actor)
    with ctx.db.transaction() as session:
        changed = session.execute(
            update(SCHEDULE)
            .where(SCHEDULE.c.id == schedule_id)
            .values(active=active, updated_at=ctx.clock(), last_error=None)
        )
        if not changed.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"no schedule {schedule_id}")


def _claim(
    session: Session, schedule_id: int, start: datetime, label: str, now: datetime
) -> int | None:
    """The run row of (schedule, period), inserted by this transaction; None when
    another has it. The unique key decides, not a look beforehand."""
    values = {
        "schedule_id": schedule_id,
        "period_start": start,
        "period_label": label,
        "started_at": now,
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(RUN)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["schedule_id", "period_start"])
        .returning(RUN.c.id)
    )
    return session.execute(statement).scalar()


def start_due_reviews(ctx: CommandContext, now: datetime | None = None) -> list[int]:
    """Start this period's instance of every active schedule that has none yet;
    returns the instances started by this call."""
    now = now or ctx.clock()
    zone = ZoneInfo(ctx.timezone)
    with ctx.db.sessions() as session:
        schedules = session.scalars(
            select(ReviewSchedule)
            .where(ReviewSchedule.active.is_(True))
            .order_by(ReviewSchedule.id)
        ).all()
        done = {
            (s, p)
            for s, p in session.execute(
                select(RUN.c.schedule_id, RUN.c.period_start).where(
                    RUN.c.schedule_id.in_([s.id for s in schedules])
                )
            )
        }
    started: list[int] = []
    for schedule in schedules:
        try:
            rule = recurrence.parse(schedule.recurrence)
        except recurrence.InvalidRecurrence as exc:
            _note_error(ctx, schedule.id, exc.message)
            continue
        period = rule.current(now)
        if period is None:
            continue
        n, start, end = period
        if (schedule.id, start) in done:
            continue  # the common case, answered without a write transaction
        try:
            instance_id = _start(ctx, schedule, n, start, end, rule.label(n, zone), now)
        except DomainError as exc:
            log.warning("review schedule %s: %s", schedule.id, exc.message)
            _note_error(ctx, schedule.id, exc.message)
            continue
        if instance_id is not None:
            started.append(instance_id)
    return started


def _start(
    ctx: CommandContext,
    schedule: ReviewSchedule,
    n: int,
    start: datetime,
    end: datetime,
    label: str,
    now: datetime,
) -> int | None:
    try:
        with unit_of_work(ctx) as unit:
            session = unit.session
            run_id = _claim(session, schedule.id, start, label, now)
            if run_id is None:
                return None
            owner = _active_user(session, schedule.owner)
            if owner is None:
                raise NotFound(f"the schedule's owner {schedule.owner} is not an active user")
            actor = Actor(f"{owner.username} via schedule"[:64], frozenset(owner.roles or []))
            # On the owner's authority: one who may no longer start it starts nothing.
            ctx.policy.require_start(
                actor, schedule.process_id, _starter_lanes(session, schedule.process_id)
            )
            review = ScheduledReview(
                schedule.id,
                schedule.name,
                schedule.process_id,
                label,
                start,
                end,
                owner.username,
                tuple(schedule.process_owners or ()),
                schedule.description,
            )
            data = ctx.pack.review(review) if ctx.pack.review is not None else {}
            result = start_in(unit, actor, schedule.process_id, data)
            session.execute(
                update(RUN).where(RUN.c.id == run_id).values(instance_id=result.instance_id)
            )
            session.execute(
                update(SCHEDULE).where(SCHEDULE.c.id == schedule.id).values(last_error=None)
            )
            return result.instance_id
    except Conflict:
        return None  # another worker's transaction had the period


def _note_error(ctx: CommandContext, schedule_id: int, message: str) -> None:
    with ctx.db.transaction() as session:
        session.execute(
            update(SCHEDULE).where(SCHEDULE.c.id == schedule_id).values(last_error=message[:2000])
        )
