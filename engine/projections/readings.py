"""Metric readings: every value a service reports (`metric_values` of its call) is kept
with its period, so baselines and trends come from history."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from engine.persistence.database import Writes
from engine.persistence.models import MetricValue, table
from engine.services import ServiceCall

# inline: no RETURNING of generated keys, which nothing reads (and a pipeline cannot yet)
_INSERT_READINGS = insert(table(MetricValue)).inline()


def readings_of(call: ServiceCall) -> list[dict[str, Any]]:
    return list(call.extra.get("metric_values", []))


def write_readings(
    session: Session, instance_id: int, calls: Iterable[ServiceCall], at: datetime
) -> None:
    rows = [
        {
            "code": reading["code"],
            "value": reading["value"],
            "period": str(reading.get("period") or ""),
            "instance_id": instance_id,
            "recorded_by": reading.get("recorded_by"),
            # replay reads the history as it stood before this event
            "recorded_at": at,
        }
        for call in calls
        for reading in readings_of(call)
    ]
    if rows:
        Writes.of(session).add(_INSERT_READINGS, rows)
