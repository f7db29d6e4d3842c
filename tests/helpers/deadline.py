"""A bound on how long a call may take, for tests of work that used to run for ever:
without the bound the test would hang instead of failing."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class TookTooLong(AssertionError):
    pass


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail with TookTooLong when the block runs longer than `seconds` (SIGALRM; tests
    run in the main thread, also under xdist)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TookTooLong(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def quickly(seconds: float = 1.0) -> Iterator[None]:
    """What the block bounds takes milliseconds; it fails only when it runs on for
    several times `seconds` (unbounded work would run for minutes). No assertion on
    how long it took: on a busy machine that would fail for the wrong reason; the
    tests assert the bound that was hit, which does not depend on the machine."""
    with deadline(seconds * 5):
        yield
