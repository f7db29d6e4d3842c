"""Prefills that read beyond the task's own data: a form names them in `x-prefill`
(`{"function": "<name>"}`), the pack registers each with the instance variables it
reads (the task projection copies those, so the form page never loads workflow
state). Prefills that only rearrange the instance's data are declared in the forms
as expressions, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.forms.prefill import Lookups
from engine.pack import Prefill, Registry

REGISTRY = Registry()


def _prefill(name: str, reads: set[str]) -> Any:
    def add(function: Any) -> Any:
        REGISTRY[name] = Prefill(function, frozenset(reads))
        return function

    return add


def catalogued(item: Mapping[str, Any], lookups: Lookups) -> tuple[str, Mapping[str, Any]] | None:
    """The catalogue metric a proposal means: by its code, else by its name."""
    catalogue = lookups.catalogue
    code = item.get("code")
    if code and code in catalogue:
        return str(code), catalogue[code]
    name = str(item.get("name") or "").strip().casefold()
    for known, metric in catalogue.items():
        names = {str(metric.get(k) or "").casefold() for k in ("name_zh", "name_en")}
        if name and (name in names or name == known.casefold()):
            return known, metric
    return None


@_prefill("metrics_from_proposals", {"proposals", "metrics"})
def metrics_from_proposals(data: Mapping[str, Any], lookups: Lookups) -> Any:
    """The proposals as this cycle's metric set: a proposal naming a catalogue metric
    (by code or by name) takes the catalogue's code, unit, direction and category, so
    its baseline and trend come from that metric's recorded history."""
    metrics: list[dict[str, Any]] = []
    taken: set[str] = set()
    for proposal in data.get("proposals") or []:
        owner = proposal.get("process_owner") or ""
        for i, item in enumerate(proposal.get("metrics") or [], start=1):
            found = catalogued(item, lookups)
            known: Mapping[str, Any] = found[1] if found else {}
            code = found[0] if found else item.get("code") or f"{owner.upper()}_{i}"
            if code in taken:
                continue  # two owners proposed the same metric: one row
            taken.add(code)
            metrics.append(
                {
                    "code": code,
                    "name": item.get("name") or known.get("name_zh", ""),
                    "category": item.get("category") or known.get("category", "quality"),
                    "unit": item.get("unit") or known.get("unit", ""),
                    "direction": item.get("direction") or known.get("direction", "higher_better"),
                    "method": item.get("method") or known.get("method", ""),
                    "owner": owner,
                }
            )
    return metrics or None


@_prefill("targets_from_metrics", {"metrics", "targets"})
def targets_from_metrics(data: Mapping[str, Any], lookups: Lookups) -> Any:
    """4.2: a row per metric, its baseline the metric's latest recorded value, kept
    where an earlier pass already set it."""
    previous = {t.get("code"): t for t in data.get("targets") or []}
    targets = []
    for metric in data.get("metrics") or []:
        code = metric.get("code")
        row = {"code": code, "baseline": lookups.latest(code), "target": None}
        row.update({k: v for k, v in previous.get(code, {}).items() if v is not None})
        targets.append(row)
    return targets


@_prefill("targets_from_current", {"gaps", "targets"})
def targets_from_current(data: Mapping[str, Any], lookups: Lookups) -> Any:
    """4.6: after implementation the measured values become the new baselines."""
    current = {g.get("metric"): g.get("current") for g in data.get("gaps") or []}
    targets = []
    for target in data.get("targets") or []:
        code = target.get("code")
        baseline = current.get(code)
        targets.append(
            {
                "code": code,
                "baseline": baseline if baseline is not None else target.get("baseline"),
                "target": target.get("target"),
            }
        )
    return targets
