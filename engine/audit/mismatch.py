"""A difference between what the record says and what replaying it produces."""

from __future__ import annotations

from typing import Any

from engine.persistence.models import Event, readable


class Mismatch(Exception):
    """`recorded` is what the database holds (an event's checkpoint or result, a stored
    row, the stored state), `replayed` what the replay produced in its place."""

    def __init__(
        self,
        seq: int,
        element: str | None,
        message: str,
        *,
        recorded: Any = None,
        replayed: Any = None,
    ) -> None:
        super().__init__(message)
        self.seq = seq
        self.element = element
        self.message = message
        self.recorded = recorded
        self.replayed = replayed

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "element": self.element,
            "message": self.message,
            "recorded": self.recorded,
            "replayed": self.replayed,
        }


def payload_of(event: Event) -> dict[str, Any]:
    """The event's payload; an event whose payload cannot be read is a mismatch at its
    seq: nothing after it can be rebuilt."""
    if not readable(event.payload):
        raise Mismatch(
            event.seq,
            event.bpmn_id,
            f"event {event.seq} cannot be read: its payload is no JSON object",
        )
    return event.payload
