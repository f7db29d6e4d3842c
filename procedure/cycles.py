"""How improvements follow each other on their own.

- 4.8: closing an improvement with `next_cycle` starts the next one, which carries
  this cycle's metrics forward with the values measured last as its baselines.
- 2.5.1 定期进行服务改进评审: a review schedule (engine.commands.schedules) starts
  one improvement per period, registered as a periodic review of that period with
  the process owners the schedule names; its owner registers the input.

Both are 定期评审 (`periodic_review`) in the register's source mix."""

from __future__ import annotations

from typing import Any

from engine.pack import Completed, ScheduledReview

PERIODIC_REVIEW = "periodic_review"


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
        "source": PERIODIC_REVIEW,
        "reference": done.record_number or f"#{done.instance_id}",
        "description": data.get("carried_over") or data.get("summary") or "",
        "process_owners": data.get("process_owners") or [],
        "metrics": data.get("metrics") or [],
        "targets": targets,
        "previous_instance": done.instance_id,
    }


def scheduled_review(review: ScheduledReview) -> dict[str, Any]:
    return {
        "source": PERIODIC_REVIEW,
        "reference": f"{review.schedule_name} {review.period_label}"[:200],
        "description": review.description
        or f"定期服务改进评审 {review.period_label} / Periodic improvement review {review.period_label}",
        "process_owners": list(review.process_owners),
    }
