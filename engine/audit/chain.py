"""Append-only, hash-chained history of every command.

Each event's hash covers the previous hash and the canonical JSON of the event, so
a changed, deleted or reordered row breaks the chain at the first altered `seq`.
Appending happens inside the command's transaction; the instance row is locked
then, and (instance_id, seq) is unique, so two writers can never both append.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.clock import utcnow
from engine.errors import NotFound
from engine.persistence.database import Writes
from engine.persistence.models import Event, Instance, table

EVENT_TABLE = table(Event)
# inline: no RETURNING of the new id, which nothing reads (and a pipeline cannot yet)
_INSERT_EVENTS = insert(EVENT_TABLE).inline()

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 as is; anything not JSON becomes its str()."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def plain(value: Any) -> Any:
    """A detached, JSON-only copy (workflow data is mutated after the event is made)."""
    return json.loads(json.dumps(value, default=str))


def iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_body(event: Event) -> dict[str, Any]:
    return {
        "instance_id": event.instance_id,
        "seq": event.seq,
        "type": event.type,
        "at": iso(event.at),
        "actor": event.actor,
        "task_id": event.task_id,
        "bpmn_id": event.bpmn_id,
        "payload": event.payload,
    }


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


class ChainHead(Protocol):
    """What appending needs of the (locked) instance: its id and the end of its chain."""

    id: int
    last_seq: int
    last_hash: str


@dataclass(frozen=True)
class NewEvent:
    seq: int
    type: str
    at: datetime
    actor: str | None
    task_id: str | None
    bpmn_id: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class EventLog:
    """The events of one command on one locked instance, chained as they are appended
    and written in one statement when the command saves (`write`)."""

    def __init__(self, head: ChainHead, at: datetime | None = None) -> None:
        self.head = head
        # One time for the whole command: its events, projections and notes agree.
        self.at = at or utcnow()
        self.appended: list[NewEvent] = []

    def append(
        self,
        type_: str,
        actor: str | None,
        payload: dict[str, Any] | None = None,
        *,
        task_id: str | None = None,
        bpmn_id: str | None = None,
    ) -> NewEvent:
        seq = self.head.last_seq + 1
        body = {
            "instance_id": self.head.id,
            "seq": seq,
            "type": type_,
            "at": iso(self.at),
            "actor": actor,
            "task_id": task_id,
            "bpmn_id": bpmn_id,
            "payload": plain(payload or {}),
        }
        prev_hash = self.head.last_hash
        event = NewEvent(
            seq,
            type_,
            self.at,
            actor,
            task_id,
            bpmn_id,
            body["payload"],
            prev_hash,
            chain_hash(prev_hash, body),
        )
        self.head.last_seq = seq
        self.head.last_hash = event.hash
        self.appended.append(event)
        return event

    def write(self, session: Session) -> None:
        if not self.appended:
            return
        Writes.of(session).add(
            _INSERT_EVENTS,
            [
                {
                    "instance_id": self.head.id,
                    "seq": e.seq,
                    "type": e.type,
                    "at": e.at,
                    "actor": e.actor,
                    "task_id": e.task_id,
                    "bpmn_id": e.bpmn_id,
                    "payload": e.payload,
                    "prev_hash": e.prev_hash,
                    "hash": e.hash,
                }
                for e in self.appended
            ],
        )


@dataclass(frozen=True)
class Verification:
    ok: bool
    broken_at: int | None
    message: str
    events: int

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "broken_at": self.broken_at, "message": self.message}


def verify(session: Session, instance_id: int) -> Verification:
    """Recompute the chain of one instance; report the first broken link."""
    events = session.scalars(
        select(Event).where(Event.instance_id == instance_id).order_by(Event.seq)
    ).all()
    prev = GENESIS_HASH
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            return Verification(
                False, expected_seq, f"event {expected_seq} is missing", len(events)
            )
        if event.prev_hash != prev:
            return Verification(
                False, event.seq, f"event {event.seq} does not follow its predecessor", len(events)
            )
        if chain_hash(prev, event_body(event)) != event.hash:
            return Verification(
                False, event.seq, f"event {event.seq} was altered after it was written", len(events)
            )
        prev = event.hash
    instance = session.get(Instance, instance_id)
    if instance is None:
        if not events:
            raise NotFound(f"no instance {instance_id}")
        return Verification(
            False, None, "the log has events of an instance that is gone", len(events)
        )
    if instance.last_seq != len(events) or instance.last_hash != prev:
        return Verification(
            False,
            len(events) + 1,
            f"the instance reached event {instance.last_seq} but the log ends at {len(events)}",
            len(events),
        )
    return Verification(True, None, f"{len(events)} events verified", len(events))


def describe(event: Event) -> dict[str, Any]:
    return {
        "instance_id": event.instance_id,
        "seq": event.seq,
        "type": event.type,
        "actor": event.actor,
        "at": iso(event.at),
        "task_id": event.task_id,
        "bpmn_id": event.bpmn_id,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
