"""What an improvement's evidence is read as: its attached files and its evidence pack,
each for those who may read the improvement (anyone else is told it does not exist)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.attachments import audit as attachment_audit
from engine.attachments.store import AttachmentStore, is_sha256
from engine.errors import NotFound
from engine.evidence.pack import EvidencePack, evidence_pack
from engine.persistence.models import Record
from engine.queries import instances

if TYPE_CHECKING:
    from engine.queries.reader import Queries


@dataclass(frozen=True)
class AttachmentFile:
    """A file attached to an improvement, as a download needs it."""

    sha256: str
    name: str
    type: str
    size: int
    path: Path


def instance_of_number(session: Session, number: str) -> int:
    """The instance of the improvement numbered `number` (404 when there is none)."""
    if not isinstance(number, str) or not 1 <= len(number) <= 32:
        raise NotFound(f"no improvement {number}")
    found = session.scalar(select(Record.instance_id).where(Record.number == number))
    if found is None:
        raise NotFound(f"no improvement {number}")
    return int(found)


class EvidenceQueries:
    def __init__(self, queries: Queries, attachments: AttachmentStore | None) -> None:
        self.queries = queries
        self.attachments = attachments

    def _readable(self, session: Session, actor: Actor, number: str) -> int:
        instance_id = instance_of_number(session, number)
        policy = self.queries.policy
        if not policy.may_read_all(actor):
            policy.require_read(actor, instance_id, instances.participation(session, instance_id))
        return instance_id

    def instance_of(self, actor: Actor, number: str) -> int:
        with self.queries.db.sessions() as session:
            return self._readable(session, actor, number)

    def attachment(self, actor: Actor, number: str, sha256: str) -> AttachmentFile:
        """A file the improvement's history records, to download; 404 to those who may
        not read the improvement, for a file it does not record, or one no longer kept."""
        if not is_sha256(sha256) or self.attachments is None:
            raise NotFound(f"no attachment {sha256} of {number}")
        with self.queries.db.snapshot() as session:
            instance_id = self._readable(session, actor, number)
            found = next(
                (a for a in attachment_audit.attached(session, instance_id) if a.sha256 == sha256),
                None,
            )
        if found is None:
            raise NotFound(f"no attachment {sha256} of {number}")
        # Served only as what it was when attached: a changed file is not the evidence.
        if self.attachments.problem(sha256) is not None:
            raise NotFound(f"the attachment {sha256} of {number} is no longer kept as attached")
        reference: dict[str, Any] = found.reference
        return AttachmentFile(
            sha256,
            str(reference["name"]),
            str(reference["type"]),
            int(reference["size"]),
            self.attachments.path(sha256),
        )

    def attachments_of(self, actor: Actor, number: str) -> list[attachment_audit.Attached]:
        """Every file the improvement's history records, in the order attached."""
        with self.queries.db.snapshot() as session:
            instance_id = self._readable(session, actor, number)
            return list(attachment_audit.attached(session, instance_id))

    def pack(self, actor: Actor, number: str) -> EvidencePack:
        """The evidence pack of the improvement numbered `number`."""
        with self.queries.db.snapshot() as session:
            instance_id = self._readable(session, actor, number)
            return evidence_pack(session, self.queries.pack, self.attachments, instance_id)

    def pack_of_instance(self, actor: Actor, instance_id: int) -> EvidencePack:
        """The evidence pack of an instance (its record's, when it keeps one)."""
        policy = self.queries.policy
        with self.queries.db.snapshot() as session:
            if not policy.may_read_all(actor):
                policy.require_read(
                    actor, instance_id, instances.participation(session, instance_id)
                )
            return evidence_pack(session, self.queries.pack, self.attachments, instance_id)
