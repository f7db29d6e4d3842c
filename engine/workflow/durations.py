"""ISO 8601 durations, read and bounded by the engine's own rule.

Every duration the engine reads goes through here before any date arithmetic: the
forms' `duration` check, the timers of running instances (`timeDuration`), the
`due_in` of user tasks, and the literal values a diagram holds when it is deployed.
SpiffWorkflow's own parser is never given one: it adds a year as twelve months, one
month at a time (`P99999999999999999999999999999Y` never returns, `P1000000Y` takes
half a minute), and lets a due date run past the year 9999 (`P9999Y`: 500).

The forms accept `PnW` or `PnYnMnDTnHnMnS` (only the seconds may have a fraction),
and so does this module. A duration may be at most MAX_YEARS years long, measured
with a year of 365¼ days and a month of a twelfth of that, whatever the date it
starts from: `P5Y`, `P60M`, `P260W` and `P1826D` are accepted, `P5YT1S` is not.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

MAX_YEARS = 5
# Longer text cannot be a duration within the bound: refused before the pattern runs.
MAX_TEXT = 64
EXAMPLES = "P7D, P2W or PT12H"

_DAY = 24 * 3600
_YEAR = Fraction(1461, 4) * _DAY  # 365¼ days, in seconds
_MONTH = _YEAR / 12
_PATTERN = re.compile(
    r"P(?:(?P<weeks>\d+)W"
    r"|(?=\d|T\d)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?)",
    re.ASCII,  # `\d` would also read other scripts' digits
)


class InvalidDuration(ValueError):
    """The text is no duration this module reads, or one longer than the bound."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Duration:
    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: Fraction = Fraction(0)

    @property
    def nominal_seconds(self) -> Fraction:
        """The length the bound is checked against (a year of 365¼ days)."""
        return (
            self.years * _YEAR
            + self.months * _MONTH
            + (self.weeks * 7 + self.days) * _DAY
            + self.hours * 3600
            + self.minutes * 60
            + self.seconds
        )

    def after(self, start: datetime) -> datetime:
        """`start` plus this duration: years and months on the calendar (a month after
        31 January is the last day of February), the rest as elapsed time."""
        month_index = start.year * 12 + start.month - 1 + self.years * 12 + self.months
        year, month = divmod(month_index, 12)
        try:
            shifted = start.replace(
                year=year,
                month=month + 1,
                day=min(start.day, calendar.monthrange(year, month + 1)[1]),
            )
            return shifted + timedelta(
                weeks=self.weeks,
                days=self.days,
                hours=self.hours,
                minutes=self.minutes,
                seconds=float(self.seconds),
            )
        except (ValueError, OverflowError) as exc:
            raise InvalidDuration("the due time would fall after the year 9999") from exc


MAX_DURATION = Duration(years=MAX_YEARS)
BOUND_TEXT = f"at most {MAX_YEARS} years"


def parse(text: object) -> Duration:
    """The duration `text` spells, refused (InvalidDuration) when it spells none or one
    longer than MAX_DURATION."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise InvalidDuration(f"not an ISO 8601 duration such as {EXAMPLES}")
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise InvalidDuration(f"not an ISO 8601 duration such as {EXAMPLES}")
    parts = {k: v for k, v in match.groupdict().items() if v is not None}
    seconds = Fraction(parts.pop("seconds", "0"))
    duration = Duration(seconds=seconds, **{k: int(v) for k, v in parts.items()})
    if duration.nominal_seconds > MAX_DURATION.nominal_seconds:
        raise InvalidDuration(f"longer than {MAX_YEARS} years, the longest duration allowed")
    return duration


def due(start: datetime, text: object) -> datetime:
    """When a wait of `text`, begun at `start`, ends."""
    return parse(text).after(start)
