"""Durations are read by the engine's own rule: the forms' spellings, at most five
years, refused at once however long the number, never handed to SpiffWorkflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from engine.workflow import durations
from engine.workflow.durations import Duration, InvalidDuration
from tests.helpers.deadline import deadline

START = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P7D", Duration(days=7)),
        ("P2W", Duration(weeks=2)),
        ("PT12H", Duration(hours=12)),
        ("P1Y2M3DT4H5M6.5S", Duration(1, 2, 0, 3, 4, 5, Fraction(13, 2))),
        ("PT0.25S", Duration(seconds=Fraction(1, 4))),
        ("P0D", Duration()),
        ("P5Y", Duration(years=5)),
        ("P60M", Duration(months=60)),
        ("P260W", Duration(weeks=260)),
        ("P1826D", Duration(days=1826)),
    ],
)
def test_the_forms_spellings_are_read(text: str, expected: Duration) -> None:
    assert durations.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P",
        "PT",
        "P1DT",
        "7D",
        "p7d",
        "P1W2D",
        "P1.5D",
        "PT1,5S",
        " P7D",
        "P-1D",
        "P\u0663D",  # an Arabic-Indic three
        "R/P1D",
        "2026-01-01",
        7,
        None,
        ["P7D"],
    ],
)
def test_what_the_forms_would_not_accept_is_refused(text: object) -> None:
    with pytest.raises(InvalidDuration, match="not an ISO 8601 duration"):
        durations.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "P5YT1S",
        "P61M",
        "P261W",
        "P1827D",
        "PT43830H1S",
        "P9999Y",
        "P1000000Y",
        "P99999999999999999999999999999Y",
        "PT" + "9" * 60 + "S",
    ],
)
def test_longer_than_five_years_is_refused_at_once(text: str) -> None:
    with deadline(5), pytest.raises(InvalidDuration, match="longer than 5 years"):
        durations.parse(text)


def test_text_too_long_to_be_a_bounded_duration_is_refused_before_matching() -> None:
    with pytest.raises(InvalidDuration, match="not an ISO 8601 duration"):
        durations.parse("P" + "0" * 100 + "1D")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P1M", datetime(2026, 2, 28, 9, 30, tzinfo=UTC)),
        ("P1Y1M", datetime(2027, 2, 28, 9, 30, tzinfo=UTC)),
        ("P13M", datetime(2027, 2, 28, 9, 30, tzinfo=UTC)),
        ("P4Y1M", datetime(2030, 2, 28, 9, 30, tzinfo=UTC)),
        ("P3Y1M", datetime(2029, 2, 28, 9, 30, tzinfo=UTC)),
        ("P2Y1M", datetime(2028, 2, 29, 9, 30, tzinfo=UTC)),
        ("P1DT1H", datetime(2026, 2, 1, 10, 30, tzinfo=UTC)),
        ("P2W", START + timedelta(days=14)),
        ("PT1.5S", START + timedelta(seconds=1.5)),
    ],
)
def test_due_counts_months_on_the_calendar(text: str, expected: datetime) -> None:
    assert durations.due(START, text) == expected


def test_a_due_time_past_the_calendar_is_refused() -> None:
    with pytest.raises(InvalidDuration, match="year 9999"):
        durations.due(datetime(9999, 6, 1, tzinfo=UTC), "P1Y")
