"""What publishing a changed process would do to the improvements that use it.

For a draft of one process: which running instances of it could be migrated onto the
draft once it is deployed (the very check `migrate_instance` makes, asked of each
instance's current state), which could not and why, how many instances stand on
each deployed version, and a what-if replay of the newest recorded histories on the
draft (engine.audit.what_if): for each, the first step that would have gone
differently, or none.

Only instances of the draft's own process are looked at; what a process it calls
runs is part of its instance (on the called versions the instance pinned, which the
what-if keeps; migration would take the latest). Instances of other processes that
call the draft's process (call activities) keep the version they pinned until they
are migrated themselves: they are out of scope here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.audit import replay, state, what_if
from engine.errors import DomainError, NotFound, ValidationFailed
from engine.pack import Pack
from engine.persistence.models import Instance, ProcessDefinition
from engine.workflow import definitions, parsing, stepping
from engine.workflow.safe_xml import content_hash, utf8_text

# The most histories one impact replays (each is replayed twice: on its own version
# and on the draft); the newest first.
MAX_WHAT_IF = 200

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class NotMigratable:
    instance_id: int
    elements: list[str]  # what the draft lacks that the instance's state holds
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "elements": self.elements, "reason": self.reason}


@dataclass(frozen=True)
class WhatIf:
    instance_id: int
    divergence: what_if.Divergence | None

    def as_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "identical": self.divergence is None,
            "first_divergence": self.divergence.as_dict() if self.divergence else None,
        }


@dataclass(frozen=True)
class VersionUse:
    version: int
    running: int
    finished: int

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "running": self.running, "finished": self.finished}


@dataclass
class Impact:
    migratable: list[int] = field(default_factory=list)
    not_migratable: list[NotMigratable] = field(default_factory=list)
    what_if: list[WhatIf] = field(default_factory=list)
    versions: list[VersionUse] = field(default_factory=list)
    limited: bool = False  # some instances were left out of the what-if replay

    def as_json(self) -> dict[str, Any]:
        return {
            "migratable": self.migratable,
            "not_migratable": [n.as_json() for n in self.not_migratable],
            "what_if": [w.as_json() for w in self.what_if],
            "versions": [v.as_json() for v in self.versions],
            "limited": self.limited,
        }


class DraftSpecs:
    """A draft of one process as the engine would run it, with the processes it calls:
    on the called definitions a history pinned, or on the latest deployed ones (which
    deploying the draft and migrating onto it would pin). Parsed per set of called
    definitions, for this impact only: a draft is not stored, so never kept."""

    def __init__(self, session: Session, process_id: str, xml: bytes) -> None:
        filename = f"{process_id}.bpmn"
        defines, calls = parsing.processes_and_calls(xml, filename)
        if process_id not in defines:
            raise ValidationFailed(
                f"the draft does not define the process {process_id}",
                {process_id: ["no such process in the draft"]},
            )
        self.session = session
        self.process_id = process_id
        self.defines = defines
        self.calls = sorted(calls)
        # Not added to the session: a ProcessDefinition row only to be parsed.
        self.row = ProcessDefinition(
            process_id=process_id,
            name=process_id,
            version=0,
            content_hash=content_hash(xml),
            bpmn_xml=utf8_text(xml, filename),
            filename=filename,
            called_processes=self.calls,
        )
        self._parsed: dict[tuple[int, ...], parsing.ParsedSpecs] = {}

    def with_called(self, pinned: Mapping[str, int]) -> parsing.ParsedSpecs:
        """The draft's specs with what it calls (transitively) on the definitions `pinned`
        names, and on the latest deployed version where it names none; the draft's own
        processes stand for themselves."""
        chosen: dict[str, ProcessDefinition] = {}
        pending = list(self.calls)
        while pending:
            pid = pending.pop()
            if pid in chosen or pid in self.defines:
                continue
            wanted = pinned.get(pid)
            row = (
                self.session.get(ProcessDefinition, wanted)
                if wanted is not None
                else definitions.latest(self.session, pid)
            )
            if row is None:
                raise NotFound("a pinned process definition is missing")
            chosen[pid] = row
            pending.extend(row.called_processes or [])
        key = tuple(sorted(row.id for row in chosen.values()))
        if key not in self._parsed:
            self._parsed[key] = _parse(self.process_id, [self.row, *chosen.values()])
        return self._parsed[key]


def _parse(process_id: str, rows: list[ProcessDefinition]) -> parsing.ParsedSpecs:
    """A draft that cannot be parsed as the process is invalid input (422), whatever
    the parser tripped on."""
    try:
        return parsing.parsed_specs(process_id, rows, keep=False)
    except DomainError:
        raise
    except Exception as exc:
        raise ValidationFailed(
            f"the draft cannot be run as {process_id}: {exc}", {process_id: [str(exc)]}
        ) from exc


def impact(
    session: Session,
    pack: Pack,
    process_id: str,
    draft_xml: bytes,
    *,
    limit: int = 50,
    progress: Progress | None = None,
) -> Impact:
    """The impact of deploying `draft_xml` as the next version of `process_id`: which
    running instances could be migrated onto it, and how the newest `limit` histories
    (at most MAX_WHAT_IF; running and finished, newest first) would have gone on it.
    `progress(done, total)` hears of each instance looked at. ValidationFailed when the
    draft cannot be run as the process, before anything is looked at."""
    if limit < 0:
        raise ValidationFailed("the limit cannot be negative", {"limit": ["negative"]})
    draft = DraftSpecs(session, process_id, draft_xml)
    try:
        migration_target = draft.with_called({})
    except NotFound as exc:
        raise ValidationFailed(exc.message, {process_id: [exc.message]}) from exc
    running = list(
        session.scalars(
            select(Instance)
            .where(Instance.process_id == process_id, Instance.status == "running")
            .order_by(Instance.id)
        )
    )
    limit = min(limit, MAX_WHAT_IF)
    newest = list(
        session.scalars(
            select(Instance.id)
            .where(Instance.process_id == process_id)
            .order_by(Instance.id.desc())
            .limit(limit + 1)
        )
    )
    result = Impact(versions=_versions(session, process_id), limited=len(newest) > limit)
    newest = newest[:limit]
    total, done = len(running) + len(newest), 0
    report = progress or (lambda done, total: None)
    report(done, total)
    registry = state.shared_serializer().registry
    for instance in running:
        try:
            missing = stepping.elements_missing(
                _current_workflow(session, pack, instance), migration_target, registry
            )
        except DomainError as exc:
            result.not_migratable.append(NotMigratable(instance.id, [], exc.message))
        else:
            if missing:
                reason = "the instance's state holds elements the draft does not have"
                result.not_migratable.append(NotMigratable(instance.id, missing, reason))
            else:
                result.migratable.append(instance.id)
        done += 1
        report(done, total)
    for instance_id in newest:
        divergence = what_if.what_if(session, pack, instance_id, draft.with_called)
        result.what_if.append(WhatIf(instance_id, divergence))
        done += 1
        report(done, total)
    return result


def _current_workflow(session: Session, pack: Pack, instance: Instance) -> BpmnWorkflow:
    """The instance's workflow as its next command would load it (a copy of its own):
    the checked stored state, brought up to its last event."""
    snapshot = state.load_checked(session, instance)
    if snapshot.seq < instance.last_seq:
        replay.catch_up(session, instance.id, snapshot.workflow, snapshot.seq, pack.services)
    return snapshot.workflow


def _versions(session: Session, process_id: str) -> list[VersionUse]:
    counts: dict[tuple[int, str], int] = {
        (definition_id, status): n
        for definition_id, status, n in session.execute(
            select(Instance.definition_id, Instance.status, func.count())
            .where(Instance.process_id == process_id)
            .group_by(Instance.definition_id, Instance.status)
        )
    }
    return [
        VersionUse(version, counts.get((id_, "running"), 0), counts.get((id_, "completed"), 0))
        for id_, version in session.execute(
            select(ProcessDefinition.id, ProcessDefinition.version)
            .where(ProcessDefinition.process_id == process_id)
            .order_by(ProcessDefinition.version)
        )
    ]
