"""A clock a test moves by hand: the engine reads the time from it, so a timer comes
due when the test says so, never by waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# The cycle's re-check interval, and how far the clock jumps to pass it: a day, so
# that SpiffWorkflow's own look at the wall clock never fires the timer by itself.
RECHECK_AFTER = "P1D"
PAST_THE_RECHECK = timedelta(days=2)


class FakeClock:
    """The wall clock plus an offset the test advances: times keep increasing across a
    jump, and events of one test keep their order."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta = PAST_THE_RECHECK) -> datetime:
        self.offset += delta
        return self()
