"""compute_gaps against the formulas of DESIGN section 4."""

from __future__ import annotations

import pytest

from procedure.services import (
    apply_change_outcomes,
    compute_gaps,
    current_values,
    least_squares_slope,
)

HIGHER = {"code": "AVAIL", "name": "可用率", "unit": "%", "direction": "higher_better"}
LOWER = {"code": "MTTR", "name": "修复时间", "unit": "h", "direction": "lower_better"}


def one(metric, baseline, target, current, history=None):
    rows = compute_gaps(
        [metric],
        [{"code": metric["code"], "baseline": baseline, "target": target}],
        {metric["code"]: current},
        history,
    )
    return rows[0]


def test_higher_is_better_gap_and_progress() -> None:
    row = one(HIGHER, 99.0, 99.9, 99.3)
    assert row["gap"] == pytest.approx(0.6)
    assert row["progress_pct"] == pytest.approx(33.3333, abs=1e-4)
    assert row["status"] == "improving"
    assert (row["metric"], row["baseline"], row["target"], row["current"]) == (
        "AVAIL",
        99.0,
        99.9,
        99.3,
    )


def test_lower_is_better_gap_sign() -> None:
    row = one(LOWER, 4.0, 2.0, 3.5)
    assert row["gap"] == pytest.approx(1.5)  # c - t
    assert row["progress_pct"] == pytest.approx(25.0)
    assert row["status"] == "improving"
    assert one(LOWER, 4.0, 2.0, 1.8)["gap"] == pytest.approx(-0.2)
    assert one(LOWER, 4.0, 2.0, 1.8)["status"] == "achieved"


def test_achieved_exactly_at_target() -> None:
    row = one(HIGHER, 90, 95, 95)
    assert row["gap"] == 0
    assert row["status"] == "achieved"
    assert row["progress_pct"] == 100


def test_flat_when_no_progress() -> None:
    row = one(HIGHER, 90, 95, 90)
    assert row["progress_pct"] == 0
    assert row["status"] == "flat"


def test_regression_both_directions() -> None:
    assert one(HIGHER, 90, 95, 88)["status"] == "regressing"
    assert one(HIGHER, 90, 95, 88)["progress_pct"] == pytest.approx(-40.0)
    assert one(LOWER, 4.0, 2.0, 5.0)["status"] == "regressing"
    assert one(LOWER, 4.0, 2.0, 5.0)["progress_pct"] == pytest.approx(-50.0)


def test_target_equal_to_baseline_has_no_progress() -> None:
    row = one(HIGHER, 95, 95, 94)
    assert row["progress_pct"] is None
    assert row["gap"] == pytest.approx(1.0)
    assert row["status"] == "regressing"
    assert row["remaining_share"] is None
    assert one(HIGHER, 95, 95, 96)["status"] == "achieved"


def test_trend_sign_means_better() -> None:
    # availability rising: positive; MTTR falling: also positive (better)
    assert one(HIGHER, 90, 95, 93, {"AVAIL": [90, 91, 92]})["trend"] == pytest.approx(1.0)
    assert one(LOWER, 4, 2, 2.5, {"MTTR": [4.0, 3.5, 3.0]})["trend"] == pytest.approx(0.5)
    assert one(LOWER, 4, 2, 4.5, {"MTTR": [3.0, 3.5, 4.0]})["trend"] == pytest.approx(-0.5)
    assert one(HIGHER, 90, 95, 93)["trend"] is None  # one point is no trend


def test_trend_uses_last_six_values() -> None:
    history = {"AVAIL": [50, 10, 90, 91, 92, 93, 94]}
    assert one(HIGHER, 90, 99, 95, history)["trend"] == pytest.approx(1.0)


def test_priority_orders_by_remaining_share() -> None:
    metrics = [HIGHER, LOWER, {"code": "CSAT", "direction": "higher_better"}]
    targets = [
        {"code": "AVAIL", "baseline": 99.0, "target": 99.9},  # share 0.6/0.9 = 0.667
        {"code": "MTTR", "baseline": 4.0, "target": 2.0},  # share 1.5/2 = 0.75
        {"code": "CSAT", "baseline": 4.0, "target": 4.5},  # share 0.1/0.5 = 0.2
    ]
    rows = compute_gaps(metrics, targets, {"AVAIL": 99.3, "MTTR": 3.5, "CSAT": 4.4})
    assert [(r["metric"], r["priority"]) for r in rows] == [("MTTR", 1), ("AVAIL", 2), ("CSAT", 3)]


def test_missing_measurement_is_reported_not_invented() -> None:
    rows = compute_gaps([HIGHER], [{"code": "AVAIL", "baseline": 90, "target": 95}], {})
    assert rows[0]["current"] is None
    assert rows[0]["gap"] is None
    assert rows[0]["status"] is None


def test_least_squares_slope() -> None:
    assert least_squares_slope([1, 2, 3, 4]) == pytest.approx(1.0)
    assert least_squares_slope([5]) is None


def test_current_values_from_reports() -> None:
    collected = [
        {"values": [{"code": "A", "value": 1}]},
        {"values": [{"code": "B", "value": "2.5"}]},
    ]
    assert current_values(collected) == {"A": 1.0, "B": 2.5}


def test_change_outcomes_matched_by_title_not_position() -> None:
    measures = [{"title": "M1"}, {"title": "M2"}]
    results = [
        {"title": "M2", "rfc_number": "RFC-2026-0002", "change_outcome": "rejected"},
        {"title": "M1", "rfc_number": "RFC-2026-0001", "change_outcome": "implemented"},
    ]
    updated = apply_change_outcomes(measures, results)
    assert [(m["title"], m["change_outcome"]) for m in updated] == [
        ("M1", "implemented"),
        ("M2", "rejected"),
    ]
    assert measures[0] == {"title": "M1"}  # inputs untouched


def test_huge_values_never_give_numbers_json_cannot_hold() -> None:
    import json

    rows = compute_gaps(
        [{"code": "X", "direction": "higher_better"}],
        [{"code": "X", "baseline": 0.0, "target": 1e-300}],
        {"X": 1e308},
        {"X": [-1e308, 1e308]},
    )
    json.dumps(rows, allow_nan=False)
    assert rows[0]["progress_pct"] is None
