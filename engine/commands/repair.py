"""Rebuild an instance's stored state from its history, when the stored one cannot be
used: an operator's command (administrators only), audited by a `state_repaired`
event that replay checks like any other checkpoint."""

from __future__ import annotations

from engine.access import Actor
from engine.audit import replay, state
from engine.audit.chain import EventLog
from engine.audit.mismatch import Mismatch
from engine.commands.context import CommandContext, Remembered, unit_of_work
from engine.commands.progress import CommandResult
from engine.errors import Conflict, DomainError, NotFound
from engine.persistence import instances


def repair_state(ctx: CommandContext, instance_id: int, actor: Actor) -> CommandResult:
    """Replay the whole log, as the audit replay does, and store the state it ends in.
    Refused when the stored state is sound (nothing to repair) and when the log itself
    does not replay (then no state can be trusted)."""
    ctx.policy.require_administer(actor)
    with unit_of_work(ctx) as unit:
        session = unit.session
        instance = instances.lock_instance(session, instance_id)
        if instance is None:
            raise NotFound(f"no instance {instance_id}")
        unit.touch(instance.id)
        problem = state.problem_of(session, instance.id, ctx.serializer)
        if problem is None:
            raise Conflict(f"the stored state of instance {instance_id} matches its history")
        try:
            run = replay.rebuild(session, ctx.pack, instance.id)
        except Mismatch as mismatch:
            raise DomainError(
                f"the history of instance {instance_id} does not replay (seq {mismatch.seq}: "
                f"{mismatch.message}); no state can be rebuilt from it"
            ) from mismatch
        seen = run.seen
        events = EventLog(instance, ctx.clock())
        events.append(
            state.REPAIRED,
            actor.username,
            {
                "problem": problem.message,
                "from_seq": problem.seq,
                "after": seen.checkpoint(seen.data),
            },
        )
        events.write(session)
        instances.save_state(
            session,
            instance,
            ctx.serializer.dumps(run.workflow),
            events.at,
            first=instances.stored_state(session, instance.id) is None,
        )
        instances.update_instance(
            session,
            instance.id,
            {
                "last_seq": instance.last_seq,
                "last_hash": instance.last_hash,
                "snapshot_seq": instance.last_seq,
                "updated_at": events.at,
            },
        )
        unit.remember_after_commit(
            instance.id, instance.last_seq, Remembered(run.workflow, run.parsed, seen)
        )
        return CommandResult(
            instance.id, instance.status, [e.seq for e in events.appended], seen.open_tasks
        )
