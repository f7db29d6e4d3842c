"""Service tasks: what a service-task function is, what it may read, what it returns.

A diagram may call only the functions its pack registers (engine.pack). Each is pure
over its inputs; what it needs from the database (metric history, number sequences)
arrives through a `ServiceContext` the runtime provides, so the functions are
unit-tested without a database, and replay hands them the very answers they had.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


class ServiceContext(Protocol):
    def metric_history(self, code: str, limit: int) -> list[float]:
        """Recorded values of a metric, oldest first, at most `limit`."""
        ...

    def next_number(self, prefix: str) -> str:
        """The next number of a yearly sequence such as RFC-2026-0001."""
        ...


@dataclass(frozen=True)
class ServiceCall:
    """One service-task execution, kept for the event log and metric history."""

    operation: str
    params: dict[str, Any]
    result: Any
    # what the call records besides its result: "metric_values" (readings to store)
    extra: dict[str, Any] = field(default_factory=dict)


ServiceFunction = Callable[[dict[str, Any], ServiceContext], ServiceCall]
