"""A bound on how long a call may take, for tests of work that used to run for ever:
without the bound the test would hang instead of failing."""

from __future__ import annotations

import signal
import time
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
    """The block must end within `seconds` (what it bounds takes milliseconds; the
    margin is for a busy machine)."""
    began = time.perf_counter()
    with deadline(seconds * 5):
        yield
    took = time.perf_counter() - began
    assert took < seconds, f"took {took:.2f} s"
