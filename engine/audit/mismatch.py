"""A difference between what the record says and what replaying it produces."""

from __future__ import annotations

from typing import Any


class Mismatch(Exception):
    def __init__(
        self, seq: int, element: str | None, message: str, expected: Any = None, actual: Any = None
    ) -> None:
        super().__init__(message)
        self.seq = seq
        self.element = element
        self.message = message
        self.expected = expected
        self.actual = actual

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "element": self.element,
            "message": self.message,
            "expected": self.expected,
            "actual": self.actual,
        }
