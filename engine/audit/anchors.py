"""Chain anchors: the heads of every chain, kept outside the database.

A chain proves nothing against someone who can rewrite the whole table and compute
the hashes anew, or who drops the newest events and winds the instance back. Its
heads, written down outside the database (an auditor's file, a ticket, a mail), do:
every anchored (instance, seq, hash) must still be in the chain, as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit.chain import iso, verify
from engine.clock import utcnow
from engine.errors import NotFound, ValidationFailed
from engine.persistence.models import Event, Instance

ANCHORS_FORMAT = "csi-anchors-1"


def take(session: Session, leave_out: set[int] | None = None) -> dict[str, Any]:
    """The head of every instance's chain (but those in `leave_out`: chains found
    broken are no anchor), to keep outside the database."""
    heads = [
        row
        for row in session.execute(
            select(Instance.id, Instance.last_seq, Instance.last_hash)
            .where(Instance.last_seq > 0)
            .order_by(Instance.id)
        ).all()
        if row[0] not in (leave_out or set())
    ]
    return {
        "format": ANCHORS_FORMAT,
        "taken_at": iso(utcnow()),
        "heads": [{"instance_id": i, "seq": seq, "hash": h} for i, seq, h in heads],
    }


@dataclass(frozen=True)
class AnchorProblem:
    instance_id: Any
    seq: Any
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "seq": self.seq, "message": self.message}


def check(session: Session, document: Any) -> list[AnchorProblem]:
    """Every anchored head that the database no longer holds as it was, and every
    anchored chain that no longer verifies (an empty list: all still stand)."""
    if not isinstance(document, dict) or document.get("format") != ANCHORS_FORMAT:
        raise ValidationFailed("not an anchors file", {"format": [ANCHORS_FORMAT]})
    problems: list[AnchorProblem] = []
    for head in document.get("heads") or []:
        if not (
            isinstance(head, dict)
            and isinstance(head.get("instance_id"), int)
            and isinstance(head.get("seq"), int)
        ):
            problems.append(AnchorProblem(None, None, "not an anchored head"))
            continue
        instance_id: int = head["instance_id"]
        seq, digest = head["seq"], head.get("hash")
        event = session.scalar(
            select(Event).where(Event.instance_id == instance_id, Event.seq == seq)
        )
        if event is None:
            problems.append(AnchorProblem(instance_id, seq, "the anchored event is gone"))
            continue
        if event.hash != digest:
            problems.append(
                AnchorProblem(instance_id, seq, "the anchored event was rewritten since")
            )
            continue
        try:
            result = verify(session, instance_id)
        except NotFound:
            problems.append(AnchorProblem(instance_id, seq, "the instance is gone"))
            continue
        if not result.ok:
            problems.append(AnchorProblem(instance_id, result.broken_at, result.message))
    return problems
