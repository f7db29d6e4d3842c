"""Service-task functions of the procedure: gap analysis (DESIGN section 4), change
outcomes written back onto the measures, RFC numbers. The diagrams name them by
their registered ids (`csi/compute_gaps` …); nothing else may be called.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from engine.pack import Registry
from engine.services import ServiceCall, ServiceContext

DEFAULT_TREND_WINDOW = 6


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def least_squares_slope(values: Sequence[float]) -> float | None:
    """Slope of the best straight line through equally spaced values (None under 2 points)."""
    n = len(values)
    if n < 2:
        return None
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def gap_status(gap: float | None, progress_pct: float | None) -> str | None:
    """Status of DESIGN section 4. With target equal to baseline there is no progress
    scale: still short of the target then means worse than the baseline."""
    if gap is None:
        return None
    if gap <= 0:
        return "achieved"
    if progress_pct is None or progress_pct < 0:
        return "regressing"
    if progress_pct == 0:
        return "flat"
    return "improving"


def compute_gaps(
    metrics: Sequence[Mapping[str, Any]],
    targets: Sequence[Mapping[str, Any]],
    current: Mapping[str, float],
    history: Mapping[str, Sequence[float]] | None = None,
    trend_window: int = DEFAULT_TREND_WINDOW,
) -> list[dict[str, Any]]:
    """Gap analysis of DESIGN section 4, one entry per metric, ranked by priority.

    `current` maps metric code to the value measured this period; `history` maps
    code to earlier recorded values (oldest first) for the trend, the current value
    is appended to them.
    """
    history = history or {}
    by_code = {t.get("code"): t for t in targets}
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        code = str(metric.get("code") or "")
        direction = metric.get("direction", "higher_better")
        sign = 1.0 if direction == "higher_better" else -1.0
        target_row = by_code.get(code, {})
        b = _number(target_row.get("baseline"))
        t = _number(target_row.get("target"))
        c = _number(current.get(code)) if code in current else None

        gap = progress = share = None
        if t is not None and c is not None:
            gap = (t - c) * sign
        if b is not None and t is not None and c is not None and t != b:
            progress = (c - b) / (t - b) * 100
        if gap is not None and b is not None and t is not None and t != b:
            share = abs(gap) / abs(t - b)

        series = [v for v in (_number(x) for x in history.get(code, [])) if v is not None]
        if c is not None:
            series.append(c)
        slope = least_squares_slope(series[-trend_window:])
        rows.append(
            {
                "metric": code,
                "name": metric.get("name"),
                "unit": metric.get("unit"),
                "direction": direction,
                "baseline": b,
                "target": t,
                "current": c,
                "gap": _round(gap),
                "progress_pct": _round(progress),
                "status": gap_status(gap, progress),
                "trend": _round(slope * sign) if slope is not None else None,
                "remaining_share": _round(share),
            }
        )
    # Largest remaining share first; metrics without a share (no target span) last.
    order = sorted(
        range(len(rows)),
        key=lambda i: (rows[i]["remaining_share"] is None, -(rows[i]["remaining_share"] or 0.0), i),
    )
    for rank, index in enumerate(order, start=1):
        rows[index]["priority"] = rank
    return [rows[i] for i in order]


def _round(value: float | None) -> float | None:
    """Four decimals; None for what JSON cannot hold (huge inputs overflow to inf)."""
    return None if value is None or not math.isfinite(value) else round(value, 4)


def current_values(collected: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Measured value per metric code from the collect_data reports of one round."""
    values: dict[str, float] = {}
    for report in collected or []:
        for entry in report.get("values", []) or []:
            number = _number(entry.get("value"))
            if entry.get("code") is not None and number is not None:
                values[entry["code"]] = number
    return values


def apply_change_outcomes(
    measures: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Write each RFC's number and outcome back onto the measure it implements.

    Parallel call activities finish in any order, so results are matched by title,
    each result used once.
    """
    remaining = list(results or [])
    updated: list[dict[str, Any]] = []
    for measure in measures:
        copy = dict(measure)
        for i, result in enumerate(remaining):
            if result.get("title") == measure.get("title"):
                copy["rfc_number"] = result.get("rfc_number")
                copy["change_outcome"] = result.get("change_outcome")
                del remaining[i]
                break
        updated.append(copy)
    return updated


# -- registry ---------------------------------------------------------------------------

REGISTRY = Registry()


@REGISTRY.register("csi/compute_gaps")
def compute_gaps_task(params: dict[str, Any], ctx: ServiceContext) -> ServiceCall:
    metrics = params.get("metrics") or []
    current = current_values(params.get("collected") or [])
    history = {
        m["code"]: ctx.metric_history(m["code"], DEFAULT_TREND_WINDOW - 1)
        for m in metrics
        if m.get("code")
    }
    gaps = compute_gaps(metrics, params.get("targets") or [], current, history)
    readings = [
        {
            "code": entry.get("code"),
            "value": _number(entry.get("value")),
            "period": report.get("period"),
            "recorded_by": report.get("submitted_by") or report.get("metric_owner"),
        }
        for report in params.get("collected") or []
        for entry in report.get("values") or []
        if entry.get("code") and _number(entry.get("value")) is not None
    ]
    return ServiceCall("csi/compute_gaps", params, gaps, {"metric_values": readings})


@REGISTRY.register("csi/apply_change_outcomes")
def apply_change_outcomes_task(params: dict[str, Any], ctx: ServiceContext) -> ServiceCall:
    result = apply_change_outcomes(params.get("measures") or [], params.get("results") or [])
    return ServiceCall("csi/apply_change_outcomes", params, result)


@REGISTRY.register("csi/assign_rfc")
def assign_rfc_task(params: dict[str, Any], ctx: ServiceContext) -> ServiceCall:
    return ServiceCall("csi/assign_rfc", params, ctx.next_number("RFC"))
