"""A difference between what the record says and what replaying it produces."""

from __future__ import annotations

from typing import Any


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
