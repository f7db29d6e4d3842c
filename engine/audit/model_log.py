"""The model log: every submission, approval, rejection and deployment of the
procedure, hash-chained by the same rules as an instance's history, so an auditor can
prove who changed the procedure, who approved it and when.

One chain for the whole database. Appending locks its head row, so two publications
never chain onto the same entry; verifying recomputes every hash from the first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.audit.chain import GENESIS_HASH, chain_hash, iso, plain
from engine.clock import utcnow
from engine.persistence.models import (
    ModelEvent,
    ModelLogHead,
    ProcessDefinition,
    payload_from_text,
    readable,
)

_HEAD_ID = 1


def _body(
    seq: int,
    type_: str,
    at: datetime,
    actor: str | None,
    process_id: str,
    draft_id: int | None,
    version: int | None,
    payload: Any,
) -> dict[str, Any]:
    return {
        "log": "models",
        "seq": seq,
        "type": type_,
        "at": iso(at),
        "actor": actor,
        "process_id": process_id,
        "draft_id": draft_id,
        "version": version,
        "payload": payload,
    }


def _locked_head(session: Session) -> ModelLogHead:
    head = session.scalar(select(ModelLogHead).where(ModelLogHead.id == _HEAD_ID).with_for_update())
    if head is not None:
        return head
    try:
        with session.begin_nested():
            session.add(ModelLogHead(id=_HEAD_ID, last_seq=0, last_hash=GENESIS_HASH))
    except IntegrityError:
        pass  # another transaction made it first: lock theirs
    return session.scalars(
        select(ModelLogHead).where(ModelLogHead.id == _HEAD_ID).with_for_update()
    ).one()


def append(
    session: Session,
    type_: str,
    actor: str | None,
    process_id: str,
    payload: dict[str, Any] | None = None,
    *,
    draft_id: int | None = None,
    version: int | None = None,
    at: datetime | None = None,
) -> ModelEvent:
    """Chain one entry onto the log, inside the caller's transaction."""
    head = _locked_head(session)
    at = at or utcnow()
    seq = head.last_seq + 1
    body_payload = plain(payload or {})
    digest = chain_hash(
        head.last_hash,
        _body(seq, type_, at, actor, process_id, draft_id, version, body_payload),
    )
    entry = ModelEvent(
        seq=seq,
        type=type_,
        at=at,
        actor=actor,
        process_id=process_id,
        draft_id=draft_id,
        version=version,
        payload=body_payload,
        prev_hash=head.last_hash,
        hash=digest,
    )
    session.add(entry)
    head.last_seq, head.last_hash = seq, digest
    session.flush()
    return entry


def log_deployed(
    session: Session,
    actor: str | None,
    deployed: Iterable[ProcessDefinition],
    reason: str,
    draft_id: int | None = None,
) -> None:
    """One `version_deployed` entry per new version."""
    for definition in deployed:
        append(
            session,
            "version_deployed",
            actor,
            definition.process_id,
            {
                "content_hash": definition.content_hash,
                "author": definition.author,
                "approved_by": definition.approved_by,
                "note": definition.change_note,
                "reason": reason,
            },
            draft_id=draft_id,
            version=definition.version,
            at=definition.deployed_at,
        )


@dataclass(frozen=True)
class LogVerification:
    ok: bool
    broken_at: int | None
    message: str
    entries: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "broken_at": self.broken_at,
            "message": self.message,
            "entries": self.entries,
        }


_ENTRIES = select(
    ModelEvent.seq,
    ModelEvent.type,
    ModelEvent.at,
    ModelEvent.actor,
    ModelEvent.process_id,
    ModelEvent.draft_id,
    ModelEvent.version,
    cast(ModelEvent.payload, Text).label("stored_payload"),
    ModelEvent.prev_hash,
    ModelEvent.hash,
).order_by(ModelEvent.seq)


def verify(session: Session) -> LogVerification:
    """Recompute the whole chain; report its first broken link."""
    entries = session.execute(_ENTRIES).all()
    prev = GENESIS_HASH
    for expected, entry in enumerate(entries, start=1):
        broken = _broken(entry, expected, prev)
        if broken is not None:
            return LogVerification(False, expected, broken, len(entries))
        prev = entry.hash
    head = session.get(ModelLogHead, _HEAD_ID)
    last_seq, last_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS_HASH)
    if last_seq != len(entries) or last_hash != prev:
        return LogVerification(
            False,
            len(entries) + 1,
            f"the model log reached entry {last_seq} but holds {len(entries)}",
            len(entries),
        )
    return LogVerification(True, None, f"{len(entries)} model log entries verified", len(entries))


def _broken(entry: Any, expected: int, prev: str) -> str | None:
    if entry.seq != expected:
        return f"entry {expected} is missing"
    if entry.prev_hash != prev:
        return f"entry {entry.seq} does not follow its predecessor"
    payload = payload_from_text(entry.stored_payload)
    if not readable(payload):
        return f"entry {entry.seq} cannot be read: its payload is no JSON object"
    body = _body(
        entry.seq,
        entry.type,
        entry.at,
        entry.actor,
        entry.process_id,
        entry.draft_id,
        entry.version,
        payload,
    )
    if chain_hash(prev, body) != entry.hash:
        return f"entry {entry.seq} was altered after it was written"
    return None
