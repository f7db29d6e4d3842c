"""Periods as the procedure writes them (统计周期): a year `2026`, a half `2026-H2`, a
quarter `2026-Q4`, a month `2026-11`, an ISO week `2026-W47` or a day `2026-11-30`.
Each is ordered by the day it starts, so a chart puts quarters and months of one
metric on one time line."""

from __future__ import annotations

import re
from datetime import date

MAX_LENGTH = 32

_YEAR = re.compile(r"^(\d{4})$")
_HALF = re.compile(r"^(\d{4})-H([12])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def normalized(text: str) -> str:
    return text.strip().upper()


def start_of(period: str) -> date | None:
    """The first day of a period, or None when it is not one of the forms above."""
    text = normalized(period)
    try:
        if m := _YEAR.match(text):
            return date(int(m[1]), 1, 1)
        if m := _HALF.match(text):
            return date(int(m[1]), 1 + 6 * (int(m[2]) - 1), 1)
        if m := _QUARTER.match(text):
            return date(int(m[1]), 1 + 3 * (int(m[2]) - 1), 1)
        if m := _MONTH.match(text):
            return date(int(m[1]), int(m[2]), 1)
        if m := _WEEK.match(text):
            return date.fromisocalendar(int(m[1]), int(m[2]), 1)
        if m := _DAY.match(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:  # month 13, week 54, 30 February
        return None
    return None


def is_period(text: str) -> bool:
    return len(text) <= MAX_LENGTH and start_of(text) is not None
