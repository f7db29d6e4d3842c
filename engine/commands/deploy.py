"""Deploy a diagram as a new version (modelers and admins), and the pack's own diagrams
when a database is set up. Validation follows the pack: its roles, its services, a
form for each user task."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from engine.access import SYSTEM_ACTOR, Actor
from engine.commands.context import CommandContext
from engine.forms.library import FormLibrary
from engine.pack import Pack
from engine.persistence.models import ProcessDefinition
from engine.queries.views import DefinitionRow, view_of
from engine.workflow import definitions
from engine.workflow.validation import DiagramRules


def rules_of(pack: Pack, forms: FormLibrary) -> DiagramRules:
    return DiagramRules(pack.roles.for_lane, pack.services, forms.has)


@dataclass(frozen=True)
class Deployed:
    definitions: list[DefinitionRow]
    created: bool  # False: the same content was deployed before; nothing changed


def deploy(ctx: CommandContext, actor: Actor, xml: bytes, filename: str) -> Deployed:
    """Validate and store a diagram (the same content again returns its version)."""
    ctx.policy.require_model(actor, "deploying diagrams")
    with ctx.db.transaction() as session:
        deployed = definitions.deploy(
            session,
            xml,
            filename=filename,
            deployed_by=actor.username,
            rules=rules_of(ctx.pack, ctx.forms),
            at=ctx.clock(),
        )
        return Deployed([view_of(DefinitionRow, d) for d in deployed.definitions], deployed.created)


def deploy_pack(
    session: Session, pack: Pack, forms: FormLibrary, deployed_by: str = SYSTEM_ACTOR
) -> list[ProcessDefinition]:
    """Deploy the pack's diagrams, called processes first (idempotent: same content,
    same version)."""
    deployed: list[ProcessDefinition] = []
    for resource in pack.diagram_files():
        result = definitions.deploy(
            session,
            resource.read_bytes(),
            filename=resource.name,
            deployed_by=deployed_by,
            rules=rules_of(pack, forms),
        )
        deployed += result.definitions
    return deployed
