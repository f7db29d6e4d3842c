"""One pass of `csi worker` (and of the web app's embedded worker), in this order:

1. fire the timers that are due (engine.commands.timers);
2. start the periodic reviews whose period has begun (engine.commands.schedules);
3. add the reminders the clock brings: tasks due tomorrow, tasks overdue
   (engine.notifications.outbox);
4. deliver pending notifications by e-mail and webhook (engine.notifications.delivery).

Each step runs whatever the one before it did: a mail server that is down delays
mail, never a timer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from engine.commands import schedules, timers
from engine.commands.context import CommandContext
from engine.notifications import delivery, outbox

log = logging.getLogger(__name__)


@dataclass
class PassResult:
    timers: list[int] = field(default_factory=list)
    reviews: list[int] = field(default_factory=list)
    reminders: int = 0
    delivered: delivery.Delivered = field(default_factory=delivery.Delivered)
    failed_steps: list[str] = field(default_factory=list)

    def summary(self) -> str:
        d = self.delivered
        text = (
            f"timers fired in {len(self.timers)} instance(s): {self.timers}; "
            f"periodic reviews started: {self.reviews}; reminders added: {self.reminders}; "
            f"notifications sent: {d.sent}, to retry: {d.retrying}, given up: {d.failed}"
        )
        if self.failed_steps:
            text += f"; failed: {', '.join(self.failed_steps)} (see the log)"
        return text

    @property
    def busy(self) -> bool:
        d = self.delivered
        return bool(
            self.timers or self.reviews or self.reminders or d.sent or d.retrying or d.failed
        )


def run_pass(
    ctx: CommandContext, compose: delivery.Composer, now: datetime | None = None
) -> PassResult:
    now = now or ctx.clock()
    result = PassResult()
    try:
        result.timers = timers.fire_due_timers(ctx, now)
    except Exception:
        log.exception("firing timers failed")
        result.failed_steps.append("timers")
    try:
        result.reviews = schedules.start_due_reviews(ctx, now)
    except Exception:
        log.exception("starting periodic reviews failed")
        result.failed_steps.append("reviews")
    try:
        with ctx.db.transaction() as session:
            result.reminders = outbox.add_reminders(session, now)
    except Exception:
        log.exception("adding reminders failed")
        result.failed_steps.append("reminders")
    try:
        result.delivered = delivery.deliver(ctx.db.transaction, now, ctx.delivery, compose)
    except Exception:
        log.exception("delivering notifications failed")
        result.failed_steps.append("delivery")
    return result
