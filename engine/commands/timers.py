"""The worker's command: fire the timers that are due. Several workers may run it at
once: on PostgreSQL each skips the rows another worker holds.

No one waits for the worker's answer, so a command it cannot carry out (a bound or a
rule refused it, see engine.workflow.bounds) changes nothing, goes to the log, and is
kept on the instance row as its incident, which the instance page shows. The worker
leaves an instance with an incident alone: the same command would fail the same way.
The next command that moves the instance (a migration to a mended version, a task
done on another branch) clears it, and the worker tries again."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from engine.access import SYSTEM
from engine.audit.chain import iso, plain
from engine.commands.context import CommandContext, unit_of_work
from engine.commands.progress import load
from engine.commands.start import start_successor
from engine.errors import DomainError
from engine.persistence import instances
from engine.persistence.instances import INSTANCE
from engine.workflow import stepping

log = logging.getLogger(__name__)


def fire_due_timers(
    ctx: CommandContext, now: datetime | None = None, limit: int = 100
) -> list[int]:
    """Fire timers due by `now` (the context's clock when None); returns the instances
    that moved."""
    now = now or ctx.clock()
    with ctx.db.sessions() as session:
        due_ids = session.scalars(
            select(INSTANCE.c.id)
            .where(
                INSTANCE.c.status == "running",
                INSTANCE.c.next_timer_at <= now,
                INSTANCE.c.incident.is_(None),
            )
            .order_by(INSTANCE.c.next_timer_at)
            .limit(limit)
        ).all()
    moved: list[int] = []
    for instance_id in due_ids:
        try:
            if _fire_timers_of(ctx, instance_id, now):
                moved.append(instance_id)
        except DomainError as error:
            log.exception("timer of instance %s failed", instance_id)
            _record_incident(ctx, instance_id, now, error)
    return moved


def _record_incident(
    ctx: CommandContext, instance_id: int, now: datetime, error: DomainError
) -> None:
    incident = {"at": iso(now), "message": error.message, "details": plain(error.details)}
    with unit_of_work(ctx) as unit:
        instances.update_instance(unit.session, instance_id, {"incident": incident})


def _fire_timers_of(ctx: CommandContext, instance_id: int, now: datetime) -> bool:
    with unit_of_work(ctx) as unit:
        instance = instances.lock_instance(unit.session, instance_id, skip_locked=True)
        if instance is None or instance.status != "running" or instance.incident is not None:
            return False
        unit.touch(instance.id)
        if instance.next_timer_at is None or instance.next_timer_at > now:
            return False
        moving = load(unit, instance, now)
        fired = stepping.fire_timers(moving.workflow, instance.id, moving.id_base, now=now)
        if not fired:
            ctx.cache.evict(instance.id)
            return False
        payload = {
            "fired": [str(t.id) for t in fired],
            "due": [t.internal_data.get("event_value") for t in fired],
        }
        result = moving.record(
            ("timer_fired", str(fired[0].id), stepping.element(fired[0]), payload), SYSTEM
        )
        start_successor(unit, result, SYSTEM, instance.process_id)
        return True
