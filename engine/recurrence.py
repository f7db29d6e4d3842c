"""Periods of a review schedule: an ISO 8601 repeating interval such as
`R/2027-01-01T00:00:00+08:00/P3M` (every three months from that instant, for ever)
or `R4/…/P1Y` (four periods), or one of a few named choices that stand for one:
`monthly`, `quarterly`, `yearly` (calendar periods in the installation's time zone).

Period n starts at `start + n × duration`, computed from the start each time (never
by adding one period to the last), so that monthly periods from 31 January fall on
the last day of shorter months and come back to the 31st."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from engine.workflow import durations

NAMED = {"monthly": "P1M", "quarterly": "P3M", "yearly": "P1Y"}
# A review more often than daily is a mistake, not a schedule.
SHORTEST = timedelta(days=1)
MAX_TEXT = 128


class InvalidRecurrence(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Recurrence:
    start: datetime
    every: durations.Duration
    repetitions: int | None  # None: for ever

    def start_of(self, n: int) -> datetime:
        d = self.every
        return durations.Duration(
            years=d.years * n,
            months=d.months * n,
            weeks=d.weeks * n,
            days=d.days * n,
            hours=d.hours * n,
            minutes=d.minutes * n,
            seconds=d.seconds * n,
        ).after(self.start)

    def current(self, now: datetime) -> tuple[int, datetime, datetime] | None:
        """The period `now` falls in: (its number, its start, its end); None before the
        first period starts or after the last one ended."""
        if now < self.start:
            return None
        # A first guess from the nominal length, then a step either way to the period.
        n = int((now - self.start).total_seconds() // float(self.every.nominal_seconds))
        while n > 0 and self.start_of(n) > now:
            n -= 1
        while self.start_of(n + 1) <= now:
            n += 1
        if self.repetitions is not None and n >= self.repetitions:
            return None
        return n, self.start_of(n), self.start_of(n + 1)

    def label(self, n: int, zone: ZoneInfo) -> str:
        """A period's name for people: 2027-Q1, 2027-01, 2027, else its first day."""
        start = self.start_of(n).astimezone(zone)
        d = self.every
        calendar_start = start.day == 1 and (start.hour, start.minute, start.second) == (0, 0, 0)
        simple = not (d.weeks or d.days or d.hours or d.minutes or d.seconds)
        if calendar_start and simple:
            months = d.years * 12 + d.months
            if months == 12 and start.month == 1:
                return f"{start.year}"
            if months == 3 and start.month % 3 == 1:
                return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
            if months == 1:
                return f"{start.year}-{start.month:02d}"
        return start.date().isoformat()


def normalise(text: object, zone: ZoneInfo, now: datetime) -> str:
    """The repeating interval `text` stands for: a named choice becomes calendar periods
    from the start of this year in `zone`; an interval is checked and kept as written."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
        raise InvalidRecurrence(
            "give monthly, quarterly, yearly or an interval like R/2027-01-01T00:00:00+08:00/P3M"
        )
    text = text.strip()
    if text.lower() in NAMED:
        year_start = datetime(now.astimezone(zone).year, 1, 1, tzinfo=zone)
        return f"R/{year_start.isoformat()}/{NAMED[text.lower()]}"
    parse(text)
    return text


def parse(text: str) -> Recurrence:
    parts = text.split("/")
    if len(parts) != 3 or not parts[0].startswith("R"):
        raise InvalidRecurrence(
            "a repeating interval reads R/<start>/<duration>, e.g. R/2027-01-01T00:00:00+08:00/P3M"
        )
    count, start_text, every_text = parts
    repetitions: int | None = None
    if count != "R":
        if not count[1:].isdigit() or int(count[1:]) < 1:
            raise InvalidRecurrence("the number of repetitions (Rn) must be a positive number")
        repetitions = int(count[1:])
    try:
        start = datetime.fromisoformat(start_text)
    except ValueError as exc:
        raise InvalidRecurrence(f"{start_text!r} is not an ISO 8601 date and time") from exc
    if start.tzinfo is None:
        raise InvalidRecurrence("the start must name its time zone, e.g. +08:00")
    try:
        every = durations.parse(every_text)
    except durations.InvalidDuration as exc:
        raise InvalidRecurrence(exc.message) from exc
    if every.nominal_seconds < SHORTEST.total_seconds():
        raise InvalidRecurrence("a period must be at least one day long")
    return Recurrence(start, every, repetitions)
