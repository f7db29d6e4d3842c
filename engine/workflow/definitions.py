"""Deployed definitions: versions by content hash, pinned calls, the specs an
instance runs on. A version is immutable once written; deploying again the same
content returns its version."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from SpiffWorkflow.exceptions import SpiffWorkflowException
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.clock import utcnow
from engine.errors import NotFound, ValidationFailed
from engine.forms import versions
from engine.forms.library import FormLibrary
from engine.forms.versions import VersionForms
from engine.inputs import storable
from engine.persistence.models import ProcessDefinition
from engine.workflow.model import ProcessModel, read_models
from engine.workflow.parsing import ParsedSpecs, parsed_specs
from engine.workflow.safe_xml import content_hash, safe_tree, utf8_text
from engine.workflow.validation import DiagramRules, validate_tree

# The column holds 256; a longer name is refused rather than cut (errors name the file).
MAX_FILENAME_CHARS = 200


@dataclass
class Deployed:
    definitions: list[ProcessDefinition]
    created: bool


@dataclass(frozen=True)
class Publication:
    """Document control of a new version: who drafted it, who approved it, why."""

    author: str | None
    approved_by: str | None
    note: str = ""


def version_hash(xml: bytes, forms: Mapping[str, Any] | None) -> str:
    """What identifies a version's content: its diagram and its forms (versions that
    hold no forms, deployed before forms were versioned, by their diagram alone)."""
    if forms is None:
        return content_hash(xml)
    canonical = json.dumps(forms, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(xml + b"\n" + canonical.encode("utf-8")).hexdigest()


def hash_of(row: ProcessDefinition) -> str:
    """The content hash a stored version's diagram and forms add up to now."""
    return version_hash(row.bpmn_xml.encode("utf-8"), row.forms)


def forms_of_process(
    model: ProcessModel | None, user_tasks: list[str], forms: Mapping[str, Any]
) -> dict[str, Any]:
    """The forms one process of a file holds: its user tasks' and its start form."""
    keys = [*user_tasks, *(model.start_forms if model is not None else ())]
    return {key: forms[key] for key in sorted(set(keys)) if key in forms}


def deploy(
    session: Session,
    xml: bytes,
    *,
    forms: Mapping[str, Any],
    filename: str = "diagram.bpmn",
    deployed_by: str | None = None,
    publication: Publication | None = None,
    rules: DiagramRules,
    at: datetime | None = None,
) -> Deployed:
    """Validate and store one BPMN file with its forms ({task id: form document});
    the same content again returns its version."""
    if len(filename) > MAX_FILENAME_CHARS or not storable(filename):
        raise ValidationFailed(
            f"the file name must be at most {MAX_FILENAME_CHARS} storable characters",
            {"filename": ["too long or not storable"]},
        )
    tree = safe_tree(xml, filename)
    report = validate_tree(tree, rules, filename)
    models = read_models(tree)
    publication = publication or Publication(deployed_by, deployed_by)
    # The file must also parse as SpiffWorkflow sees it, against what it calls.
    text = utf8_text(xml, filename)
    definitions: list[ProcessDefinition] = []
    created = False
    for pid, name in report.processes.items():
        own_forms = forms_of_process(models.get(pid), report.user_tasks.get(pid, []), forms)
        digest = version_hash(xml, own_forms)
        existing = session.scalar(
            select(ProcessDefinition).where(
                ProcessDefinition.process_id == pid, ProcessDefinition.content_hash == digest
            )
        )
        if existing is not None:
            definitions.append(existing)
            continue
        version = (
            session.scalar(
                select(func.max(ProcessDefinition.version)).where(
                    ProcessDefinition.process_id == pid
                )
            )
            or 0
        ) + 1
        definition = ProcessDefinition(
            process_id=pid,
            name=name,
            version=version,
            content_hash=digest,
            bpmn_xml=text,
            filename=filename,
            called_processes=report.called.get(pid, []),
            deployed_at=at or utcnow(),
            deployed_by=deployed_by,
            forms=own_forms,
            author=publication.author,
            approved_by=publication.approved_by,
            change_note=publication.note,
        )
        session.add(definition)
        definitions.append(definition)
        created = True
    session.flush()
    for definition in definitions:
        _check_parses(session, definition)
    return Deployed(definitions, created)


def _check_parses(session: Session, definition: ProcessDefinition) -> None:
    try:
        resolve(session, definition)
    except SpiffWorkflowException as exc:
        raise ValidationFailed(
            f"SpiffWorkflow cannot run {definition.process_id}: {exc}",
            {definition.process_id: [str(exc)]},
        ) from exc
    except NotFound as exc:
        raise ValidationFailed(exc.message, {definition.process_id: [exc.message]}) from exc


def latest(session: Session, process_id: str) -> ProcessDefinition:
    definition = session.scalar(
        select(ProcessDefinition)
        .where(ProcessDefinition.process_id == process_id)
        .order_by(ProcessDefinition.version.desc())
        .limit(1)
    )
    if definition is None:
        raise NotFound(f"no deployed process {process_id!r}")
    return definition


def version_of(session: Session, process_id: str, version: int | None) -> ProcessDefinition:
    """One deployed version of a process (the latest when `version` is None)."""
    if version is None:
        return latest(session, process_id)
    definition = session.scalar(
        select(ProcessDefinition).where(
            ProcessDefinition.process_id == process_id, ProcessDefinition.version == version
        )
    )
    if definition is None:
        raise NotFound(f"no version {version} of {process_id!r}")
    return definition


def called_by_others(session: Session) -> set[str]:
    """Processes some deployed process calls: they start only as call activities."""
    called: set[str] = set()
    for row in session.scalars(select(ProcessDefinition.called_processes)):
        called.update(row or [])
    return called


def pin_called(session: Session, definition: ProcessDefinition) -> dict[str, int]:
    """Latest versions of every process `definition` calls, transitively."""
    pinned: dict[str, int] = {}
    pending = list(definition.called_processes or [])
    while pending:
        pid = pending.pop()
        if pid in pinned:
            continue
        called = latest(session, pid)
        pinned[pid] = called.id
        pending.extend(called.called_processes or [])
    return pinned


def resolve(session: Session, definition: ProcessDefinition) -> ParsedSpecs:
    """Parsed specs for `definition` with the latest versions of what it calls."""
    pinned = pin_called(session, definition)
    rows = {definition.id: definition}
    for def_id in pinned.values():
        row = session.get(ProcessDefinition, def_id)
        if row is None:
            raise NotFound("a pinned process definition is missing")
        rows[def_id] = row
    return parsed_specs(definition.process_id, rows.values())


def spec_for_instance(
    session: Session, definition_id: int, called: Mapping[str, int]
) -> ParsedSpecs:
    """The specs an instance runs on: its definition and the pinned called ones."""
    rows: list[ProcessDefinition] = []
    for wanted in [definition_id, *called.values()]:
        row = session.get(ProcessDefinition, wanted)
        if row is None:
            raise NotFound("a pinned process definition is missing")
        rows.append(row)
    return parsed_specs(rows[0].process_id, rows)


def forms_for(session: Session, library: FormLibrary, parsed: ParsedSpecs) -> VersionForms:
    """The forms of the versions `parsed` was built from."""
    return versions.kept(library, parsed.key, lambda: _stored(session, parsed.key))


def forms_of_instance(
    session: Session, library: FormLibrary, definition_id: int, called: Mapping[str, int]
) -> VersionForms:
    """The forms of the versions an instance runs on: its definition's, then those of
    the called versions it pinned."""
    ids = [definition_id, *called.values()]
    hashes = dict(
        session.execute(
            select(ProcessDefinition.id, ProcessDefinition.content_hash).where(
                ProcessDefinition.id.in_(ids)
            )
        ).all()
    )
    key = tuple(sorted(f"{i}:{hashes.get(i)}" for i in ids))
    return versions.kept(library, key, lambda: _stored(session, key))


def _stored(session: Session, key: tuple[str, ...]) -> versions.StoredForms:
    ids = [int(part.split(":", 1)[0]) for part in key]
    found: dict[int, dict[str, Any] | None] = dict(
        session.execute(
            select(ProcessDefinition.id, ProcessDefinition.forms).where(
                ProcessDefinition.id.in_(ids)
            )
        ).all()
    )
    return versions.merged(found.get(i) for i in ids)
