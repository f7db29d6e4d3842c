"""4.8: closing an improvement with `next_cycle` starts the next one, which carries
this cycle's metrics forward with the values measured last as its baselines."""

from __future__ import annotations

from typing import Any

from engine.pack import Completed


def next_cycle(done: Completed) -> dict[str, Any] | None:
    data = done.data
    if not data.get("next_cycle"):
        return None
    current = {g.get("metric"): g.get("current") for g in data.get("gaps") or []}
    targets = [
        {
            "code": t.get("code"),
            "baseline": current.get(t.get("code"), t.get("baseline")),
            "target": t.get("target"),
        }
        for t in data.get("targets") or []
    ]
    return {
        "source": "periodic_review",
        "reference": done.record_number or f"#{done.instance_id}",
        "description": data.get("carried_over") or data.get("summary") or "",
        "process_owners": data.get("process_owners") or [],
        "metrics": data.get("metrics") or [],
        "targets": targets,
        "previous_instance": done.instance_id,
    }
