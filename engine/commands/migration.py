"""Move a running instance onto another deployed version of its process: an explicit,
audited command (`instance_migrated`), never a side effect of deploying."""

from __future__ import annotations

from engine.access import Actor
from engine.commands.context import CommandContext, unit_of_work
from engine.commands.progress import CommandResult, load
from engine.errors import Conflict, NotFound
from engine.persistence import instances
from engine.persistence.models import ProcessDefinition
from engine.workflow import definitions, stepping


def migrate_instance(
    ctx: CommandContext, instance_id: int, actor: Actor, version: int | None = None
) -> CommandResult:
    """Onto `version` (the latest by default), with the latest versions of what that
    version calls. Refused while the instance stands on an element the version lacks."""
    ctx.policy.require_model(actor, "migrating an instance")
    with unit_of_work(ctx) as unit:
        session = unit.session
        instance = instances.lock_instance(session, instance_id)
        if instance is None:
            raise NotFound(f"no instance {instance_id}")
        unit.touch(instance.id)
        if instance.status != "running":
            raise Conflict(f"instance {instance_id} is {instance.status}")
        current = session.get(ProcessDefinition, instance.definition_id)
        target = definitions.version_of(session, instance.process_id, version)
        called = definitions.pin_called(session, target)
        if target.id == instance.definition_id and called == instance.called_definitions:
            raise Conflict(f"instance {instance_id} already runs on v{target.version}")
        parsed = definitions.spec_for_instance(session, target.id, called)
        moving = load(unit, instance)
        stepping.migrate(
            moving.workflow, parsed, ctx.serializer.registry, instance.id, moving.id_base
        )
        payload = {
            "from": {
                "id": instance.definition_id,
                "version": current.version if current is not None else None,
                "called": instance.called_definitions,
            },
            "definition": {"id": target.id, "version": target.version, "hash": target.content_hash},
            "called": called,
        }
        instance.definition_id, instance.called_definitions = target.id, called
        moving.parsed = parsed  # the state names the new version's elements from here on
        return moving.record(("instance_migrated", None, None, payload), actor, migrated=True)
