"""Checks of submitted task data that JSON Schema cannot express: they compare rows
with each other or with the instance (this cycle's metrics, who owns which).

Each check returns errors keyed by field path, like schema validation, with short
English messages the web layer translates (web/formdata.error_text).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

Errors = dict[str, list[str]]
Check = Callable[[Mapping[str, Any], Mapping[str, Any]], Errors]

DUPLICATE = "duplicate"
NOT_A_METRIC = "not a metric of this cycle"
MISSING_METRIC = "a metric has no row"
NOT_YOUR_METRIC = "not a metric you own"
NOT_A_DURATION = "not a duration the timer understands"


def _rows(data: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    rows = data.get(name)
    return [r for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []


def _unique(rows: list[Mapping[str, Any]], list_name: str, key: str, errors: Errors) -> None:
    seen: set[Any] = set()
    for i, row in enumerate(rows):
        value = row.get(key)
        if value in (None, ""):
            continue
        if value in seen:
            errors.setdefault(f"{list_name}/{i}/{key}", []).append(DUPLICATE)
        seen.add(value)


def _metric_codes(instance: Mapping[str, Any]) -> list[str]:
    return [str(m.get("code")) for m in _rows(instance, "metrics") if m.get("code")]


def metric_set(data: Mapping[str, Any], instance: Mapping[str, Any]) -> Errors:
    """define_metrics: a code names one metric of the cycle."""
    errors: Errors = {}
    _unique(_rows(data, "metrics"), "metrics", "code", errors)
    return errors


def one_target_per_metric(data: Mapping[str, Any], instance: Mapping[str, Any]) -> Errors:
    """set_baseline_targets, rebaseline: exactly one row for each metric of the cycle."""
    errors: Errors = {}
    rows = _rows(data, "targets")
    codes = _metric_codes(instance)
    _unique(rows, "targets", "code", errors)
    for i, row in enumerate(rows):
        if codes and row.get("code") not in codes:
            errors.setdefault(f"targets/{i}/code", []).append(NOT_A_METRIC)
    given = {row.get("code") for row in rows}
    if any(code not in given for code in codes):
        errors.setdefault("targets", []).append(MISSING_METRIC)
    return errors


def own_metrics_only(data: Mapping[str, Any], instance: Mapping[str, Any]) -> Errors:
    """collect_data: each process owner reports the metrics they own, each once."""
    errors: Errors = {}
    rows = _rows(data, "values")
    _unique(rows, "values", "code", errors)
    owner = instance.get("metric_owner")
    owned = {
        str(m.get("code"))
        for m in _rows(instance, "metrics")
        if owner is None or m.get("owner") == owner
    }
    for i, row in enumerate(rows):
        if owned and row.get("code") not in owned:
            errors.setdefault(f"values/{i}/code", []).append(NOT_YOUR_METRIC)
    return errors


def distinct_measures(data: Mapping[str, Any], instance: Mapping[str, Any]) -> Errors:
    """record_improvement: each measure has its own title (its RFC outcome comes back
    by it)."""
    errors: Errors = {}
    _unique(_rows(data, "measures"), "measures", "title", errors)
    return errors


def recheck_duration(data: Mapping[str, Any], instance: Mapping[str, Any]) -> Errors:
    """monitor_progress: the timer must be able to read the re-check interval."""
    value = data.get("recheck_after")
    if data.get("outcome") != "continue" or not isinstance(value, str) or not value:
        return {}
    try:
        TimerEventDefinition.get_timedelta_from_start(
            TimerEventDefinition.parse_iso_duration(value)
        )
    except Exception:
        return {"recheck_after": [NOT_A_DURATION]}
    return {}


CHECKS: dict[str, tuple[Check, ...]] = {
    "define_metrics": (metric_set,),
    "set_baseline_targets": (one_target_per_metric,),
    "rebaseline": (one_target_per_metric,),
    "collect_data": (own_metrics_only,),
    "record_improvement": (distinct_measures,),
    "monitor_progress": (recheck_duration,),
}


def check(task: str, data: Mapping[str, Any], instance: Mapping[str, Any]) -> Errors:
    """Every error the checks of `task` find in `data`, given the task's instance data."""
    errors: Errors = {}
    for one in CHECKS.get(task, ()):
        for path, messages in one(data, instance).items():
            errors.setdefault(path, []).extend(messages)
    return errors
