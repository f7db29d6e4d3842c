"""The procedure's versions, drafts and model log as modelers, approvers and auditors
read them: the versions of each process with their document control and the
improvements standing on them, a draft with its lint, its diff and its impact, the
change history (变更履历) and the model log with its verification."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.access import Actor, Policy
from engine.audit import model_log
from engine.dictionary import DataDictionary
from engine.errors import NotFound
from engine.forms.library import FormLibrary
from engine.modeling import diff as diffing
from engine.modeling import gate, impact
from engine.modeling.variables import variables_known
from engine.pack import Pack
from engine.persistence.database import Database
from engine.persistence.models import Draft, Instance, ModelEvent, ProcessDefinition
from engine.workflow import definitions

OPEN_DRAFTS = ("editing", "submitted", "rejected")
FINISHED = ("completed", "cancelled")
MAX_IMPACT_LIMIT = impact.MAX_WHAT_IF


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@dataclass(frozen=True)
class VersionRow:
    process_id: str
    name: str
    version: int
    content_hash: str
    author: str | None
    approver: str | None
    note: str
    deployed_at: datetime
    running: int
    finished: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "content_hash": self.content_hash,
            "author": self.author,
            "approver": self.approver,
            "note": self.note,
            "deployed_at": self.deployed_at.isoformat(),
            "running": self.running,
            "finished": self.finished,
        }


@dataclass(frozen=True)
class DraftRow:
    id: int
    process_id: str
    author: str
    note: str
    status: str
    base_version: int | None
    comment: str
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    version: int | None
    lint: list[Any]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.lint if f.get("severity") == "error")

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "author": self.author,
            "status": self.status,
            "updated_at": self.updated_at.isoformat(),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "process_id": self.process_id,
            "author": self.author,
            "note": self.note,
            "status": self.status,
            "base_version": self.base_version,
            "comment": self.comment,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "submitted_at": _iso(self.submitted_at),
            "decided_by": self.decided_by,
            "decided_at": _iso(self.decided_at),
            "version": self.version,
            "lint": self.lint,
        }


@dataclass(frozen=True)
class ProcessVersions:
    process_id: str
    name: str
    versions: list[VersionRow]
    drafts: list[DraftRow]

    def as_dict(self) -> dict[str, Any]:
        return {
            "process_id": self.process_id,
            "name": self.name,
            "versions": [v.as_dict() for v in self.versions],
            "drafts": [d.summary() for d in self.drafts],
        }


def _draft_row(draft: Draft) -> DraftRow:
    return DraftRow(
        draft.id,
        draft.process_id,
        draft.author,
        draft.note,
        draft.status,
        draft.base_version,
        draft.comment,
        draft.created_at,
        draft.updated_at,
        draft.submitted_at,
        draft.decided_by,
        draft.decided_at,
        draft.version,
        list(draft.lint or []),
    )


def _standing(session: Session) -> dict[int, Counter[str]]:
    """How many instances run on, or finished on, each version: their own definition
    and the called versions they pinned."""
    counts: dict[int, Counter[str]] = {}
    own = select(Instance.definition_id, Instance.status, func.count()).group_by(
        Instance.definition_id, Instance.status
    )
    for definition_id, status, n in session.execute(own):
        counts.setdefault(definition_id, Counter())[status] += n
    pinned = select(Instance.called_definitions, Instance.status)
    for called, status in session.execute(pinned):
        for definition_id in (called or {}).values():
            if isinstance(definition_id, int):
                counts.setdefault(definition_id, Counter())[status] += 1
    return counts


def _version_row(row: ProcessDefinition, counts: Counter[str]) -> VersionRow:
    return VersionRow(
        row.process_id,
        row.name,
        row.version,
        row.content_hash,
        row.author if row.author is not None else row.deployed_by,
        row.approved_by if row.approved_by is not None else row.deployed_by,
        row.change_note or "",
        row.deployed_at,
        counts["running"],
        sum(counts[s] for s in FINISHED),
    )


def overview(session: Session) -> list[ProcessVersions]:
    counts = _standing(session)
    by_process: dict[str, list[VersionRow]] = {}
    names: dict[str, str] = {}
    rows = session.scalars(
        select(ProcessDefinition).order_by(ProcessDefinition.process_id, ProcessDefinition.version)
    )
    for row in rows:
        by_process.setdefault(row.process_id, []).append(
            _version_row(row, counts.get(row.id, Counter()))
        )
        names[row.process_id] = row.name
    drafts: dict[str, list[DraftRow]] = {}
    for draft in session.scalars(
        select(Draft).where(Draft.status.in_(OPEN_DRAFTS)).order_by(Draft.updated_at.desc())
    ):
        drafts.setdefault(draft.process_id, []).append(_draft_row(draft))
    processes = sorted(set(by_process) | set(drafts))
    return [
        ProcessVersions(p, names.get(p, p), by_process.get(p, []), drafts.get(p, []))
        for p in processes
    ]


class ModelQueries:
    """Reads of the procedure's versions and drafts, each behind the policy."""

    def __init__(self, db: Database, pack: Pack, forms: FormLibrary, policy: Policy) -> None:
        self.db = db
        self.pack = pack
        self.forms = forms
        self.policy = policy

    def overview(self, actor: Actor) -> list[ProcessVersions]:
        self.policy.require_read_models(actor)
        with self.db.sessions() as session:
            return overview(session)

    def version(self, actor: Actor, process_id: str, version: int | None) -> dict[str, Any]:
        self.policy.require_read_models(actor)
        with self.db.sessions() as session:
            row = definitions.version_of(session, process_id, version)
            forms = definitions.forms_of_instance(session, self.forms, row.id, {}).documents()
            return {
                "process_id": row.process_id,
                "version": row.version,
                "bpmn": row.bpmn_xml,
                "forms": forms,
            }

    def history(self, actor: Actor, process_id: str) -> list[VersionRow]:
        """The change history (变更履历) of one process, newest first."""
        found = [p for p in self.overview(actor) if p.process_id == process_id]
        if not found or not found[0].versions:
            raise NotFound(f"no deployed process {process_id!r}")
        return list(reversed(found[0].versions))

    def draft(self, actor: Actor, draft_id: int) -> tuple[DraftRow, dict[str, Any]]:
        """A draft and its content ({"bpmn", "forms"})."""
        self.policy.require_read_models(actor)
        with self.db.sessions() as session:
            draft = session.get(Draft, draft_id)
            if draft is None:
                raise NotFound(f"no draft {draft_id}")
            return _draft_row(draft), {"bpmn": draft.bpmn_xml, "forms": dict(draft.forms)}

    def _variables(self) -> Mapping[str, Any]:
        return DataDictionary(self.pack, self.forms).variables

    def lint(self, actor: Actor, process_id: str, xml: bytes, forms: Any) -> dict[str, Any]:
        """Lint a diagram and forms that are not stored (live checks in the modeler),
        with the variables known before each flow and gateway (condition help)."""
        self.policy.require_read_models(actor)
        variables = self._variables()
        with self.db.sessions() as session:
            found = gate.findings(session, self.pack, variables, process_id, xml, forms)
        return {
            "lint": [f.as_json() for f in found],
            "variables": variables_known(xml, forms, variables),
        }

    def context(self, actor: Actor) -> dict[str, Any]:
        """What a diagram of this pack may name: roles, services, deployed processes,
        and the variables the data dictionary declares."""
        self.policy.require_read_models(actor)
        with self.db.sessions() as session:
            deployed = sorted(gate.deployed_processes(session))
        return {
            "roles": [
                {"key": r.key, "zh-CN": r.zh, "en": r.en}
                for r in self.pack.roles.lane_roles.values()
            ],
            "services": sorted(self.pack.services),
            "processes": deployed,
            "variables": [
                {"name": name, "title": schema.get("title"), "type": schema.get("type")}
                for name, schema in self._variables().items()
            ],
        }

    def _against_latest(
        self, session: Session, draft: Draft
    ) -> tuple[ProcessDefinition | None, dict[str, Any]]:
        try:
            latest = definitions.latest(session, draft.process_id)
        except NotFound:
            return None, {}
        forms = definitions.forms_of_instance(session, self.forms, latest.id, {}).documents()
        return latest, forms

    def diff(self, actor: Actor, draft_id: int) -> dict[str, Any]:
        """The draft against the latest version of its process."""
        self.policy.require_read_models(actor)
        with self.db.sessions() as session:
            draft = session.get(Draft, draft_id)
            if draft is None:
                raise NotFound(f"no draft {draft_id}")
            latest, forms = self._against_latest(session, draft)
            old = latest.bpmn_xml.encode("utf-8") if latest is not None else _EMPTY
            found = diffing.diff(
                old, forms, draft.bpmn_xml.encode("utf-8"), dict(draft.forms), draft.process_id
            )
            return {**found.as_json(), "against": latest.version if latest else None}

    def impact(
        self,
        actor: Actor,
        draft_id: int,
        limit: int = 50,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Which running improvements could move onto the draft, and how recorded
        histories would have gone under it (what-if replay, newest first)."""
        self.policy.require_read_models(actor)
        with self.db.sessions() as session:
            draft = session.get(Draft, draft_id)
            if draft is None:
                raise NotFound(f"no draft {draft_id}")
            found = impact.impact(
                session,
                self.pack,
                draft.process_id,
                draft.bpmn_xml.encode("utf-8"),
                limit=min(max(limit, 0), MAX_IMPACT_LIMIT),
                progress=progress,
            )
            return found.as_json()

    def log(self, actor: Actor, process_id: str | None = None) -> list[dict[str, Any]]:
        """The model log, newest first."""
        self.policy.require_read_models(actor)
        with self.db.sessions() as session:
            query = select(ModelEvent).order_by(ModelEvent.seq.desc())
            if process_id is not None:
                query = query.where(ModelEvent.process_id == process_id)
            return [
                {
                    "seq": e.seq,
                    "type": e.type,
                    "at": e.at.isoformat(),
                    "actor": e.actor,
                    "process_id": e.process_id,
                    "draft_id": e.draft_id,
                    "version": e.version,
                    "payload": dict(e.payload),
                    "hash": e.hash,
                }
                for e in session.scalars(query.limit(1000))
            ]

    def verify_log(self, actor: Actor) -> model_log.LogVerification:
        self.policy.require_read_models(actor)
        with self.db.sessions() as session:
            return model_log.verify(session)


# A process not deployed yet: everything in the draft is added.
_EMPTY = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="empty"/>'
)
