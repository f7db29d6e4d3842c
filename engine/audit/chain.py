"""Append-only, hash-chained history of every command.

Each event's hash covers the previous hash and the canonical JSON of the event, so
a changed, deleted or reordered row breaks the chain at the first altered `seq`.
Appending happens inside the command's transaction; the instance row is locked
then, and (instance_id, seq) is unique, so two writers can never both append.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Text, bindparam, cast, insert, select
from sqlalchemy.orm import Session

from engine.clock import utcnow
from engine.errors import NotFound
from engine.persistence.database import Writes
from engine.persistence.models import (
    Event,
    Instance,
    UnreadablePayload,
    payload_from_text,
    readable,
    table,
)

EVENT_TABLE = table(Event)
INSTANCE_TABLE = table(Instance)
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


def event_body(event: Any, payload: Any = None) -> dict[str, Any]:
    """What an event's hash covers; `payload` in place of the event's own (as decoded)."""
    return {
        "instance_id": event.instance_id,
        "seq": event.seq,
        "type": event.type,
        "at": iso(event.at),
        "actor": event.actor,
        "task_id": event.task_id,
        "bpmn_id": event.bpmn_id,
        "payload": event.payload if payload is None else payload,
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
    broken_at: int | None  # the first broken link of the chain
    message: str
    events: int
    state_at: int | None = None  # the seq of a stored state that does not match the log
    # The seq of an event whose attached file is missing or changed (the chain holds).
    attachment_at: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "broken_at": self.broken_at,
            "message": self.message,
            "state_at": self.state_at,
        }


# The payload as the text the database holds, not as the column type decodes it: the
# hash is checked against what is stored.
_CHAIN_OF = (
    select(
        EVENT_TABLE.c.instance_id,
        EVENT_TABLE.c.seq,
        EVENT_TABLE.c.type,
        EVENT_TABLE.c.at,
        EVENT_TABLE.c.actor,
        EVENT_TABLE.c.task_id,
        EVENT_TABLE.c.bpmn_id,
        cast(EVENT_TABLE.c.payload, Text).label("stored_payload"),
        EVENT_TABLE.c.prev_hash,
        EVENT_TABLE.c.hash,
    )
    .where(EVENT_TABLE.c.instance_id == bindparam("instance_id"))
    .order_by(EVENT_TABLE.c.seq)
)
_HEAD_OF = select(INSTANCE_TABLE.c.last_seq, INSTANCE_TABLE.c.last_hash).where(
    INSTANCE_TABLE.c.id == bindparam("instance_id")
)


def _first_break(events: Sequence[Any]) -> tuple[int, str] | None:
    """The first broken link of a chain (its seq and what is wrong there), if any."""
    prev = GENESIS_HASH
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            return expected_seq, f"event {expected_seq} is missing"
        if event.prev_hash != prev:
            return event.seq, f"event {event.seq} does not follow its predecessor"
        payload = payload_from_text(event.stored_payload)
        if not readable(payload):
            return event.seq, f"event {event.seq} cannot be read: its payload is no JSON object"
        if chain_hash(prev, event_body(event, payload)) != event.hash:
            return event.seq, f"event {event.seq} was altered after it was written"
        prev = event.hash
    return None


def verify(session: Session, instance_id: int) -> Verification:
    """Recompute the chain of one instance; report the first broken link. The chain is
    the log's: events whose instance row is gone are checked, and reported."""
    connection = session.connection()
    events = connection.execute(_CHAIN_OF, {"instance_id": instance_id}).all()
    count = len(events)
    broken = _first_break(events)
    if broken is not None:
        return Verification(False, broken[0], broken[1], count)
    head = connection.execute(_HEAD_OF, {"instance_id": instance_id}).first()
    if head is None:
        if not events:
            raise NotFound(f"no instance {instance_id}")
        return Verification(
            False, None, f"the log holds {count} events of an instance that is gone", count
        )
    last_hash = events[-1].hash if events else GENESIS_HASH
    if head.last_seq != count or head.last_hash != last_hash:
        return Verification(
            False,
            count + 1,
            f"the instance reached event {head.last_seq} but the log ends at {count}",
            count,
        )
    return Verification(True, None, f"{count} events verified", count)


def logged_instances(session: Session) -> list[int]:
    """Every instance the log holds events of, and every instance row: all the chains
    there are, including those whose instance row someone deleted."""
    logged = select(EVENT_TABLE.c.instance_id).distinct()
    rows = select(INSTANCE_TABLE.c.id)
    return sorted(set(session.scalars(logged)) | set(session.scalars(rows)))


def describe(event: Event) -> dict[str, Any]:
    """An event as history shows and exports it; one whose payload cannot be read says
    so (`readable`), with the text the database holds in its place (`stored`)."""
    described = {
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
        "readable": readable(event.payload),
    }
    if isinstance(event.payload, UnreadablePayload):
        described["payload"] = None
        described["stored"] = event.payload.stored
    return described
