"""Changing the procedure: a modeler drafts a new version of a process (its diagram
and its forms), submits it with a change note, and an approver who is not its author
approves it, which deploys it, or rejects it with a comment. Only an approved draft
becomes a version; instances already running stay on theirs until migrated.

Every submission, approval, rejection and deployment is an entry in the model log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from engine.access import Actor
from engine.audit import model_log
from engine.commands.context import CommandContext
from engine.commands.deploy import checked_forms, rules_of
from engine.dictionary import DataDictionary
from engine.errors import Conflict, Forbidden, NotFound, ValidationFailed
from engine.inputs import storable
from engine.modeling import gate
from engine.persistence.models import Draft
from engine.workflow import definitions
from engine.workflow.safe_xml import safe_tree, utf8_text

MAX_NOTE_CHARS = 4000
# The states in which the author may still change a draft.
EDITABLE = ("editing", "rejected")


@dataclass(frozen=True)
class Saved:
    id: int
    lint: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "lint": self.lint}


@dataclass(frozen=True)
class Approved:
    process_id: str
    version: int

    def as_dict(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "version": self.version}


def _text(value: Any, field: str, limit: int = MAX_NOTE_CHARS) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or not storable(value):
        raise ValidationFailed(f"{field} must be text", {field: ["not text"]})
    if len(value) > limit:
        raise ValidationFailed(
            f"{field} is longer than {limit} characters", {field: [f"at most {limit} characters"]}
        )
    return value.strip()


def _content(xml: Any, forms: Any) -> tuple[bytes, dict[str, Any]]:
    """The draft's diagram and forms, refused (422) when they can never be a diagram and
    its forms: not text, not XML, entities, too large or too deep, forms not objects."""
    if not isinstance(xml, str):
        raise ValidationFailed("bpmn must be the diagram's XML as text", {"bpmn": ["not text"]})
    data = xml.encode("utf-8", errors="surrogatepass")
    safe_tree(data, "bpmn")
    utf8_text(data, "bpmn")
    if not isinstance(forms, dict) or not all(
        isinstance(k, str) and isinstance(v, dict) for k, v in forms.items()
    ):
        raise ValidationFailed(
            "forms must map task ids to form documents", {"forms": ["not an object of objects"]}
        )
    return data, forms


def _lint(
    ctx: CommandContext, session: Session, process_id: str, xml: bytes, forms: Mapping[str, Any]
) -> list[dict[str, Any]]:
    variables = DataDictionary(ctx.pack, ctx.forms).variables
    return [
        f.as_json() for f in gate.findings(session, ctx.pack, variables, process_id, xml, forms)
    ]


def _latest_content(ctx: CommandContext, session: Session, process_id: str) -> tuple[str, Any, int]:
    latest = definitions.latest(session, process_id)
    forms = definitions.forms_of_instance(session, ctx.forms, latest.id, {}).documents()
    return latest.bpmn_xml, forms, latest.version


def create_draft(
    ctx: CommandContext,
    actor: Actor,
    process_id: str,
    xml: Any = None,
    forms: Any = None,
    note: Any = None,
) -> Saved:
    """A new draft of `process_id`; without a diagram, a copy of its latest version."""
    ctx.policy.require_writer(actor)
    ctx.policy.require_model(actor, "drafting a change to the procedure")
    if not isinstance(process_id, str) or not 0 < len(process_id) <= 128:
        raise ValidationFailed("no such process id", {"process_id": ["not a process id"]})
    note_text = _text(note, "note")
    with ctx.db.transaction() as session:
        base: int | None = None
        if xml is None:
            xml, copied, base = _latest_content(ctx, session, process_id)
            forms = copied if forms is None else forms
        else:
            try:
                base = definitions.latest(session, process_id).version
            except NotFound:
                base = None  # a new process
        data, documents = _content(xml, {} if forms is None else forms)
        now = ctx.clock()
        draft = Draft(
            process_id=process_id,
            author=actor.username,
            bpmn_xml=data.decode("utf-8"),
            forms=documents,
            note=note_text,
            status="editing",
            base_version=base,
            lint=_lint(ctx, session, process_id, data, documents),
            comment="",
            created_at=now,
            updated_at=now,
        )
        session.add(draft)
        session.flush()
        return Saved(draft.id, draft.lint)


def _draft(session: Session, draft_id: int, *, lock: bool = True) -> Draft:
    draft = session.get(Draft, draft_id, with_for_update=lock)
    if draft is None:
        raise NotFound(f"no draft {draft_id}")
    return draft


def _own_editable(ctx: CommandContext, actor: Actor, draft: Draft) -> None:
    ctx.policy.require_writer(actor)
    ctx.policy.require_model(actor, "changing a draft")
    if draft.author != actor.username:
        raise Forbidden(
            f"draft {draft.id} is {draft.author}'s; only its author changes it",
            reason="draft_of_another",
            params={"user": draft.author},
        )
    if draft.status not in EDITABLE:
        raise Conflict(f"draft {draft.id} is {draft.status}")


def update_draft(
    ctx: CommandContext, actor: Actor, draft_id: int, xml: Any, forms: Any, note: Any = None
) -> Saved:
    """Save the author's changes; a rejected draft becomes editable again."""
    with ctx.db.transaction() as session:
        draft = _draft(session, draft_id)
        _own_editable(ctx, actor, draft)
        data, documents = _content(xml, {} if forms is None else forms)
        draft.bpmn_xml = data.decode("utf-8")
        draft.forms = documents
        if note is not None:
            draft.note = _text(note, "note")
        draft.lint = _lint(ctx, session, draft.process_id, data, documents)
        draft.status = "editing"
        draft.updated_at = ctx.clock()
        return Saved(draft.id, draft.lint)


def _refuse_errors(lint: list[dict[str, Any]]) -> None:
    errors = [f for f in lint if f.get("severity") == "error"]
    if errors:
        details: dict[str, list[str]] = {}
        for finding in errors:
            details.setdefault(str(finding["element"]), []).append(
                f"{finding['rule']}: {finding['message']}"
            )
        raise ValidationFailed(
            f"the draft has {len(errors)} lint error(s); fix them before submitting",
            details,
            reason="draft_lint_errors",
            params={"count": len(errors)},
        )


def submit_draft(ctx: CommandContext, actor: Actor, draft_id: int, note: Any = None) -> Saved:
    """Send the draft to the approvers; refused (422) while lint finds errors."""
    with ctx.db.transaction() as session:
        draft = _draft(session, draft_id)
        _own_editable(ctx, actor, draft)
        if note is not None:
            draft.note = _text(note, "note")
        if not draft.note:
            raise ValidationFailed(
                "a submission needs a change note", {"note": ["required"]}, reason="note_required"
            )
        draft.lint = _lint(
            ctx, session, draft.process_id, draft.bpmn_xml.encode("utf-8"), draft.forms
        )
        _refuse_errors(draft.lint)
        now = ctx.clock()
        draft.status, draft.submitted_at, draft.updated_at = "submitted", now, now
        draft.comment = ""
        model_log.append(
            session,
            "draft_submitted",
            actor.username,
            draft.process_id,
            {"note": draft.note, "base_version": draft.base_version, **_fingerprint(draft)},
            draft_id=draft.id,
            at=now,
        )
        return Saved(draft.id, draft.lint)


def _fingerprint(draft: Draft) -> dict[str, Any]:
    """What the log pins of a draft's content: the hash a version of it would carry."""
    return {
        "content_hash": definitions.version_hash(draft.bpmn_xml.encode("utf-8"), draft.forms),
        "forms": sorted(draft.forms),
    }


def withdraw_draft(ctx: CommandContext, actor: Actor, draft_id: int) -> None:
    """The author takes a submitted draft back to change it."""
    with ctx.db.transaction() as session:
        draft = _draft(session, draft_id)
        if draft.author != actor.username:
            raise Forbidden(
                f"draft {draft.id} is {draft.author}'s",
                reason="draft_of_another",
                params={"user": draft.author},
            )
        if draft.status != "submitted":
            raise Conflict(f"draft {draft.id} is {draft.status}, not submitted")
        now = ctx.clock()
        draft.status, draft.updated_at = "editing", now
        model_log.append(
            session,
            "draft_withdrawn",
            actor.username,
            draft.process_id,
            {},
            draft_id=draft.id,
            at=now,
        )


def approve_draft(ctx: CommandContext, actor: Actor, draft_id: int) -> Approved:
    """Deploy a submitted draft as the process's next version (four-eyes: never by its
    author). The deploy gate checks it once more, as every deployment is checked."""
    with ctx.db.transaction() as session:
        draft = _draft(session, draft_id)
        ctx.policy.require_writer(actor)
        ctx.policy.require_approve_models(actor, draft.author)
        if draft.status != "submitted":
            raise Conflict(f"draft {draft.id} is {draft.status}, not submitted")
        documents = dict(draft.forms)
        checked_forms(ctx.pack, documents)
        now = ctx.clock()
        deployed = definitions.deploy(
            session,
            draft.bpmn_xml.encode("utf-8"),
            forms=documents,
            filename=f"{draft.process_id}.bpmn",
            deployed_by=actor.username,
            publication=definitions.Publication(draft.author, actor.username, draft.note),
            rules=rules_of(ctx.pack, documents.__contains__),
            at=now,
        )
        mine = next((d for d in deployed.definitions if d.process_id == draft.process_id), None)
        if mine is None:
            raise ValidationFailed(
                f"the draft does not define process {draft.process_id}",
                {draft.process_id: ["no such process in the diagram"]},
            )
        if not deployed.created:
            raise Conflict(
                f"the draft is the same as version {mine.version}: there is nothing to approve",
                reason="draft_unchanged",
                params={"version": mine.version},
            )
        draft.status, draft.version = "approved", mine.version
        draft.decided_by, draft.decided_at, draft.updated_at = actor.username, now, now
        model_log.append(
            session,
            "draft_approved",
            actor.username,
            draft.process_id,
            {"author": draft.author, "note": draft.note, **_fingerprint(draft)},
            draft_id=draft.id,
            version=mine.version,
            at=now,
        )
        new = [d for d in deployed.definitions if d.deployed_at == now]
        model_log.log_deployed(session, actor.username, new, "approved draft", draft.id)
        return Approved(draft.process_id, mine.version)


def reject_draft(ctx: CommandContext, actor: Actor, draft_id: int, comment: Any) -> None:
    """Send a submitted draft back to its author with the reason."""
    with ctx.db.transaction() as session:
        draft = _draft(session, draft_id)
        # Who may reject is answered before what they sent: a refusal tells nothing more.
        ctx.policy.require_writer(actor)
        ctx.policy.require_approve_models(actor, draft.author)
        text = _text(comment, "comment")
        if not text:
            raise ValidationFailed(
                "a rejection needs a comment for the author",
                {"comment": ["required"]},
                reason="comment_required",
            )
        if draft.status != "submitted":
            raise Conflict(f"draft {draft.id} is {draft.status}, not submitted")
        now = ctx.clock()
        draft.status, draft.comment = "rejected", text
        draft.decided_by, draft.decided_at, draft.updated_at = actor.username, now, now
        model_log.append(
            session,
            "draft_rejected",
            actor.username,
            draft.process_id,
            {"comment": text, **_fingerprint(draft)},
            draft_id=draft.id,
            at=now,
        )


def documents_json(forms: Mapping[str, Any]) -> str:
    return json.dumps(forms, ensure_ascii=False, sort_keys=True)
