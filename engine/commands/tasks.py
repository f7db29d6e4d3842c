"""Working on a user task: claim it, release it, complete it with the form's data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.access import Actor
from engine.attachments import fields as attachments
from engine.audit.chain import EventLog
from engine.commands.context import CommandContext, Unit, unit_of_work
from engine.commands.progress import CommandResult, load
from engine.commands.start import start_successor
from engine.errors import Conflict, ValidationFailed
from engine.forms.validation import validate_submission
from engine.persistence import instances
from engine.persistence.instances import LockedInstance, OpenTask
from engine.persistence.lookups import option_source
from engine.projections import records
from engine.workflow import stepping


def _open_task(unit: Unit, task_id: str, actor: Actor) -> tuple[OpenTask, LockedInstance]:
    """The task (open, the actor's to do, not claimed by another) and its locked instance."""
    row, instance = instances.lock_open_task(unit.session, task_id)
    unit.touch(instance.id)
    unit.ctx.policy.require_work_on(actor, row, row.bpmn_id)
    if row.claimed_by not in (None, actor.username):
        raise Conflict(
            f"task {row.bpmn_id} is claimed by {row.claimed_by}",
            reason="claimed_by_other",
            params={"user": row.claimed_by},
        )
    return row, instance


def claim_task(ctx: CommandContext, task_id: str, actor: Actor) -> CommandResult:
    return _set_claim(ctx, task_id, actor, claim=True)


def unclaim_task(ctx: CommandContext, task_id: str, actor: Actor) -> CommandResult:
    return _set_claim(ctx, task_id, actor, claim=False)


def _set_claim(ctx: CommandContext, task_id: str, actor: Actor, *, claim: bool) -> CommandResult:
    with unit_of_work(ctx) as unit:
        row, instance = _open_task(unit, task_id, actor)
        cached = ctx.cache.get(instance.id, instance.last_seq)
        events = EventLog(instance, ctx.clock())
        if claim and row.claimed_by is None:
            claimed_by: str | None = actor.username
            kind = "task_claimed"
        elif not claim and row.claimed_by == actor.username:
            claimed_by, kind = None, "task_unclaimed"
        else:
            return CommandResult(instance.id, instance.status)
        events.append(kind, actor.username, {}, task_id=row.id, bpmn_id=row.bpmn_id)
        instances.update_task(unit.session, row.id, {"claimed_by": claimed_by})
        events.write(unit.session)
        instances.update_instance(
            unit.session,
            instance.id,
            {
                "last_seq": instance.last_seq,
                "last_hash": instance.last_hash,
                "updated_at": events.at,
            },
        )
        if cached is not None:
            # A claim moves no workflow: the cached copy stays valid for the new seq.
            unit.remember_after_commit(instance.id, instance.last_seq, cached)
        return CommandResult(instance.id, instance.status, [e.seq for e in events.appended])


def complete_task(
    ctx: CommandContext, task_id: str, actor: Actor, data: Mapping[str, Any]
) -> CommandResult:
    with unit_of_work(ctx) as unit:
        row, instance = _open_task(unit, task_id, actor)
        moving = load(unit, instance)
        task = stepping.ready_task(moving.workflow, task_id)
        form = moving.forms.get(row.bpmn_id)
        # Files become references to the store first: the form validates those, and the
        # bytes are kept only once everything else of the command has succeeded.
        intake = attachments.take(form.schema, data, ctx.attachments.limits)
        try:
            clean = validate_submission(
                form, option_source(unit.session, task.data), intake.data, ctx.pack.checks
            )
        except ValidationFailed as exc:
            if not intake.errors:
                raise
            raise ValidationFailed(
                exc.message, errors=sorted([*intake.errors, *exc.errors], key=lambda e: e.path)
            ) from exc
        if intake.errors:
            raise ValidationFailed("the form has errors", errors=intake.errors)
        # A field left out clears what an earlier pass stored under that name (a second
        # review without a comment must not keep the first one's).
        clean = {name: clean.get(name) for name in form.fields}

        events, now = moving.events, moving.events.at
        if row.claimed_by is None:
            events.append("task_claimed", actor.username, {}, task_id=row.id, bpmn_id=row.bpmn_id)
        instances.update_task(
            unit.session,
            row.id,
            {
                "status": "completed",
                "claimed_by": actor.username,
                "completed_at": now,
                "completed_by": actor.username,
            },
        )
        if instance.record is not None and moving.model is not None:
            records.note_task(
                unit.session, moving.model, instance.record, row.bpmn_id, clean, actor.username, now
            )
        stepping.complete(moving.workflow, instance.id, moving.id_base, task, clean, actor.username)
        payload: dict[str, Any] = {"data": clean, "name": row.name}
        if intake.fields:
            # Which fields hold files, so the chain's verification finds them.
            payload["attachments"] = intake.fields
        result = moving.record(("task_completed", row.id, row.bpmn_id, payload), actor)
        successor = start_successor(unit, result, actor, instance.process_id)
        for content in intake.files:
            ctx.attachments.put(content)
        return successor
