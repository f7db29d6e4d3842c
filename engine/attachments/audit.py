"""The files the log refers to, against the store: each `task_completed` event names
its attachment fields, whose references give the sha256 each file must hash to."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.attachments.fields import references
from engine.attachments.store import AttachmentStore
from engine.audit import chain, state
from engine.persistence.models import Event, readable


@dataclass(frozen=True)
class Attached:
    """One file as an event recorded it."""

    seq: int
    bpmn_id: str | None
    field: str
    reference: dict[str, Any]

    @property
    def sha256(self) -> str:
        return str(self.reference["sha256"])


def attached(session: Session, instance_id: int) -> Iterator[Attached]:
    """Every file the instance's events record, in the order they were attached."""
    rows = session.execute(
        select(Event.seq, Event.bpmn_id, Event.payload)
        .where(Event.instance_id == instance_id, Event.type == "task_completed")
        .order_by(Event.seq)
    )
    for seq, bpmn_id, payload in rows:
        if readable(payload):
            for name, reference in references(payload):
                yield Attached(seq, bpmn_id, name, reference)


def first_problem(
    session: Session, store: AttachmentStore, instance_id: int
) -> tuple[int, str] | None:
    """The first event whose file is missing or no longer hashes to what it recorded:
    its seq and what is wrong."""
    for item in attached(session, instance_id):
        problem = store.problem(item.sha256)
        if problem is not None:
            return item.seq, (
                f"event {item.seq}: the attachment {item.reference.get('name')!r} of field "
                f"{item.field} (sha256 {item.sha256}) {problem}"
            )
    return None


def verify_instance(
    session: Session, store: AttachmentStore | None, instance_id: int
) -> chain.Verification:
    """Everything verify checks of one instance: its chain, its stored state, then each
    attached file against the hash its event recorded."""
    result = state.verify(session, instance_id)
    if not result.ok or store is None:
        return result
    problem = first_problem(session, store, instance_id)
    if problem is None:
        return result
    return chain.Verification(
        False, problem[0], problem[1], result.events, attachment_at=problem[0]
    )
