"""Deploy a diagram as a new version (modelers and admins), and the pack's own diagrams
when a database is set up. Validation follows the pack: its roles, its services, a
form for each user task."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from engine.access import SYSTEM_ACTOR, Actor
from engine.audit.model_log import log_deployed
from engine.commands.context import CommandContext
from engine.forms.library import FormLibrary, parse_form
from engine.pack import Pack
from engine.persistence.models import ProcessDefinition
from engine.queries.views import DefinitionRow, view_of
from engine.workflow import definitions
from engine.workflow.validation import DiagramRules


def rules_of(pack: Pack, has_form: Callable[[str], bool]) -> DiagramRules:
    return DiagramRules(pack.roles.for_lane, pack.services, has_form)


# Why a version deployed without a draft has no other author and approver.
ADMIN_DEPLOYMENT = "administrator deployment"
PACK_DEPLOYMENT = "deployed with the application"


@dataclass(frozen=True)
class Deployed:
    definitions: list[DefinitionRow]
    created: bool  # False: the same content was deployed before; nothing changed


def pack_forms(forms: FormLibrary) -> dict[str, Any]:
    """Every form file of the pack as a document, each checked as deploy would."""
    documents = {}
    for key in forms.task_ids():
        forms.get(key)  # refuses a broken form file, naming it
        documents[key] = forms.document(key)
    return documents


def checked_forms(pack: Pack, documents: Mapping[str, Any]) -> None:
    """Refuse, naming the task, a form the engine could not use."""
    for key, document in documents.items():
        parse_form(key, json.dumps(document), pack.prefills, pack.checks)


def deploy(ctx: CommandContext, actor: Actor, xml: bytes, filename: str) -> Deployed:
    """Deploy a diagram without a draft (administrators bootstrapping a database):
    with the pack's forms, recorded as drafted and approved by the administrator, in
    the model log as an administrator deployment."""
    ctx.policy.require_deploy(actor)
    documents = pack_forms(ctx.forms)
    with ctx.db.transaction() as session:
        deployed = definitions.deploy(
            session,
            xml,
            forms=documents,
            filename=filename,
            deployed_by=actor.username,
            publication=definitions.Publication(actor.username, actor.username, ADMIN_DEPLOYMENT),
            rules=rules_of(ctx.pack, documents.__contains__),
            at=ctx.clock(),
        )
        if deployed.created:
            log_deployed(session, actor.username, deployed.definitions, ADMIN_DEPLOYMENT)
        return Deployed([view_of(DefinitionRow, d) for d in deployed.definitions], deployed.created)


def deploy_pack(
    session: Session, pack: Pack, forms: FormLibrary, deployed_by: str = SYSTEM_ACTOR
) -> list[ProcessDefinition]:
    """Deploy the pack's diagrams with its forms, called processes first (idempotent:
    same content, same version)."""
    documents = pack_forms(forms)
    deployed: list[ProcessDefinition] = []
    for resource in pack.diagram_files():
        result = definitions.deploy(
            session,
            resource.read_bytes(),
            forms=documents,
            filename=resource.name,
            deployed_by=deployed_by,
            publication=definitions.Publication(deployed_by, deployed_by, PACK_DEPLOYMENT),
            rules=rules_of(pack, documents.__contains__),
        )
        if result.created:
            log_deployed(session, deployed_by, result.definitions, PACK_DEPLOYMENT)
        deployed += result.definitions
    return deployed
