"""What a draft is checked against: the pack it is deployed into (roles, services,
prefills, checks), the processes already deployed and the data dictionary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.modeling.lint import Finding, LintContext, lint
from engine.pack import Pack
from engine.persistence.models import ProcessDefinition


def deployed_processes(session: Session) -> frozenset[str]:
    return frozenset(session.scalars(select(ProcessDefinition.process_id).distinct()))


def context_of(session: Session, pack: Pack, variables: Mapping[str, Any]) -> LintContext:
    return LintContext(
        role_for_lane=pack.roles.for_lane,
        services=frozenset(pack.services),
        deployed=deployed_processes(session),
        prefills=pack.prefills,
        check_functions=pack.checks,
        variables=variables,
    )


def findings(
    session: Session,
    pack: Pack,
    variables: Mapping[str, Any],
    process_id: str,
    xml: bytes,
    forms: Mapping[str, Any],
) -> list[Finding]:
    return lint(xml, forms, context_of(session, pack, variables), process_id)


def has_errors(found: list[Finding]) -> bool:
    return any(f.severity == "error" for f in found)
