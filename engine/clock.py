"""Where commands read the time: a clock is any callable that returns an aware UTC
datetime. The default is the wall clock; tests and `csi worker --now` pass their own,
so nothing waits in real time for a timer to come due."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
