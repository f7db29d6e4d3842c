"""Start a process: a user holding the role of its start event's lane (or Admin), or
the pack's successor rule when an instance completes (4.8, the next cycle)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, insert, select

from engine.access import Actor
from engine.audit.chain import EVENT_TABLE, GENESIS_HASH, EventLog
from engine.commands.context import CommandContext, LiveServices, Unit, unit_of_work
from engine.commands.progress import CommandResult, Moving, engine_for
from engine.errors import NotFound, ValidationFailed
from engine.forms.validation import validate_start
from engine.forms.versions import VersionForms
from engine.inputs import plain_json
from engine.persistence.database import is_postgres
from engine.persistence.instances import INSTANCE, LockedInstance
from engine.projections import records
from engine.workflow import definitions, expressions, stepping
from engine.workflow.model import ProcessModel

_PROCESS_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")

# SQLite gives a new row the highest id + 1: once the newest instance row is deleted (by
# hand, around the application), that is the id of a chain still in the log, which every
# later start would collide with. PostgreSQL's sequence never hands an id out twice.
_NEXT_SQLITE_ID = select(
    func.max(
        func.coalesce(select(func.max(INSTANCE.c.id)).scalar_subquery(), 0),
        func.coalesce(select(func.max(EVENT_TABLE.c.instance_id)).scalar_subquery(), 0),
    )
    + 1
)


def start_instance(
    ctx: CommandContext,
    actor: Actor,
    process_id: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> CommandResult:
    """Start `process_id` (the pack's main process when None) with initial `data`."""
    ctx.policy.require_writer(actor)
    process = process_id or ctx.pack.main_process
    if not process:
        raise ValidationFailed("name the process to start", {"process": ["required"]})
    if not isinstance(process, str):
        raise ValidationFailed("the process is named by a string", {"process": ["not a string"]})
    if not _PROCESS_ID.fullmatch(process):
        raise NotFound("no deployed process of that name")
    with unit_of_work(ctx) as unit:
        result = start_in(unit, actor, process, data if data is not None else {}, checked=True)
        return start_successor(unit, result, actor, process)


def start_in(
    unit: Unit,
    actor: Actor,
    process_id: str,
    data: Any,
    parent_id: int | None = None,
    *,
    checked: bool = False,
) -> CommandResult:
    """Start an instance inside the command `unit`. `checked`: a person asked, so they
    must be one who may start it, and the initial data must be what the start form
    accepts; a successor started by the pack's rule is the engine's own data and is
    not checked against the form (it carries more than a person may type)."""
    data = plain_json(data, "initial data", "data")
    bad = sorted(k for k in data if not k.isidentifier() or expressions.is_reserved(k))
    if bad:
        raise ValidationFailed(
            "variable names must be identifiers that shadow nothing the engine provides "
            "(its functions, Python keywords, names starting with '_')",
            {f"data/{k}": ["reserved or not a name"] for k in bad},
        )
    session, ctx = unit.session, unit.ctx
    definition = definitions.latest(session, process_id)
    called = definitions.pin_called(session, definition)
    if process_id in definitions.called_by_others(session):
        raise ValidationFailed(
            f"{process_id} runs only when another process calls it",
            {"process": ["not startable"]},
        )
    parsed = definitions.spec_for_instance(session, definition.id, called)
    model = parsed.models.get(process_id)
    if checked:
        ctx.policy.require_start(
            actor, process_id, model.starter_lanes if model is not None else ()
        )
        _check_start_data(definitions.forms_for(session, ctx.forms, parsed), model, data)
    now = ctx.clock()
    chosen = {} if is_postgres(session) else {"id": session.scalar(_NEXT_SQLITE_ID)}
    instance_id = session.execute(
        insert(INSTANCE)
        .values(
            **chosen,
            process_id=process_id,
            definition_id=definition.id,
            called_definitions=called,
            status="running",
            last_seq=0,
            last_hash=GENESIS_HASH,
            snapshot_seq=0,
            data={},
            completed_elements=[],
            active_elements=[],
            started_by=actor.username,
            started_at=now,
            updated_at=now,
            parent_instance_id=parent_id,
        )
        .returning(INSTANCE.c.id)
    ).scalar_one()
    unit.touch(instance_id)
    instance = LockedInstance(
        instance_id, process_id, definition.id, dict(called), "running", 0, GENESIS_HASH, 0
    )
    if model is not None:
        instance.record = records.create(session, model, instance_id, actor.username, now)
    host = LiveServices(session, now)
    workflow = stepping.start(parsed, instance_id, data, engine_for(unit, host))
    moving = Moving(unit, instance, workflow, parsed, None, host, EventLog(instance, now))
    payload = {
        "process_id": process_id,
        "definition": {
            "id": definition.id,
            "version": definition.version,
            "hash": definition.content_hash,
        },
        "called": called,
        "data": data,
        "record_number": instance.record.number if instance.record else None,
    }
    return moving.record(("instance_started", None, None, payload), actor)


def _check_start_data(
    forms: VersionForms, model: ProcessModel | None, data: dict[str, Any]
) -> None:
    validate_start(
        [forms.get(k) for k in (model.start_forms if model else ()) if forms.has(k)], data
    )


def start_successor(
    unit: Unit, result: CommandResult, actor: Actor, process_id: str
) -> CommandResult:
    """Start the instance the pack's rule says follows the one that just completed."""
    if result.successor is not None:
        started = start_in(unit, actor, process_id, result.successor, parent_id=result.instance_id)
        result.started_instance_id = started.instance_id
    return result
