"""Periods of review schedules, and the notification settings read from the environment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine import recurrence
from engine.notifications.delivery import backoff
from engine.settings import Delivery, Settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_quarters_are_named_and_found_from_their_start() -> None:
    rule = recurrence.parse("R/2027-01-01T00:00:00+08:00/P3M")
    n, start, end = rule.current(datetime(2027, 5, 20, tzinfo=SHANGHAI)) or (0, None, None)
    assert (n, start, end) == (
        1,
        datetime(2027, 4, 1, tzinfo=SHANGHAI),
        datetime(2027, 7, 1, tzinfo=SHANGHAI),
    )
    assert rule.label(n, SHANGHAI) == "2027-Q2"
    # the first instant of a period belongs to it; the one before, to the one before
    assert rule.current(datetime(2027, 4, 1, tzinfo=SHANGHAI))[0] == 1  # type: ignore[index]
    just_before = datetime(2027, 4, 1, tzinfo=SHANGHAI) - timedelta(microseconds=1)
    assert rule.current(just_before)[0] == 0  # type: ignore[index]
    assert rule.current(datetime(2026, 12, 31, 23, tzinfo=SHANGHAI)) is None


def test_monthly_periods_from_the_31st_come_back_to_it_and_repetitions_end() -> None:
    rule = recurrence.parse("R3/2027-01-31T00:00:00+00:00/P1M")
    assert rule.start_of(1) == datetime(2027, 2, 28, tzinfo=UTC)
    assert rule.start_of(2) == datetime(2027, 3, 31, tzinfo=UTC)
    assert rule.current(datetime(2027, 4, 30, tzinfo=UTC)) is None  # after the third
    assert rule.label(0, ZoneInfo("UTC")) == "2027-01-31"


def test_named_periods_are_calendar_periods_in_the_zone() -> None:
    now = datetime(2027, 8, 1, tzinfo=UTC)
    assert recurrence.normalise("quarterly", SHANGHAI, now) == "R/2027-01-01T00:00:00+08:00/P3M"
    assert recurrence.normalise("Yearly", SHANGHAI, now) == "R/2027-01-01T00:00:00+08:00/P1Y"
    monthly = recurrence.parse(recurrence.normalise("monthly", SHANGHAI, now))
    assert monthly.label(7, SHANGHAI) == "2027-08"
    assert (
        recurrence.parse(recurrence.normalise("yearly", SHANGHAI, now)).label(0, SHANGHAI) == "2027"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "weekly",
        "R/2027-01-01/P3M",  # no zone
        "R/2027-01-01T00:00:00+08:00/PT1H",  # shorter than a day
        "R0/2027-01-01T00:00:00+08:00/P3M",
        "R/2027-01-01T00:00:00+08:00/P6Y",  # longer than durations allow
        "2027-01-01T00:00:00+08:00/P3M",
        "R/not a date/P3M",
    ],
)
def test_what_is_no_schedule_is_refused(text: str) -> None:
    with pytest.raises(recurrence.InvalidRecurrence):
        recurrence.normalise(text, SHANGHAI, datetime(2027, 1, 1, tzinfo=UTC))


def test_delivery_settings_from_the_environment() -> None:
    assert Settings.from_env({}).delivery == Delivery(base_url="http://127.0.0.1:5000")
    ssl = Delivery.from_env({"SMTP_HOST": "mail.example.com", "SMTP_SSL": "1"}, 5000)
    assert (ssl.smtp_port, ssl.smtp_ssl, ssl.smtp_from) == (465, True, "csi@mail.example.com")
    tls = Delivery.from_env(
        {"SMTP_HOST": "m", "SMTP_STARTTLS": "true", "CSI_BASE_URL": "https://csi.example.com/"},
        5000,
    )
    assert (tls.smtp_port, tls.base_url) == (587, "https://csi.example.com")
    for bad in (
        {"SMTP_SSL": "1", "SMTP_STARTTLS": "1"},
        {"SMTP_PORT": "smtp"},
        {"CSI_WEBHOOK_URL": "file:///etc/passwd"},
        {"CSI_NOTIFY_MAX_ATTEMPTS": "0"},
        {"SMTP_TIMEOUT": "soon"},
    ):
        with pytest.raises(ValueError, match=r"SMTP|WEBHOOK|ATTEMPTS"):
            Delivery.from_env(bad, 5000)


def test_retries_wait_longer_each_time_up_to_six_hours() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert backoff(30) == timedelta(hours=6)
