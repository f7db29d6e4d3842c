"""The register of records (服务改进记录台账) and metric readings, for the API and
exports: each record with its number, status and the instance variables the data
dictionary marks as the record's, plus its logged entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.persistence.models import Instance, MetricValue, Record


def describe(record: Record, data: dict[str, Any], record_fields: Sequence[str]) -> dict[str, Any]:
    """The record as the register and exports show it: the record's variables from the
    instance data, its columns, and its logged entries (reviews, monitoring)."""
    content = {name: data.get(name) for name in record_fields if name in data}
    return {
        **content,
        "number": record.number,
        "status": record.status,
        "instance_id": record.instance_id,
        "source": record.source,
        "reference": record.reference,
        "description": record.description,
        "raised_by": record.raised_by,
        "raised_on": record.raised_on.isoformat(),
        "closed_on": record.closed_on.isoformat() if record.closed_on else None,
        **(record.fields or {}),
    }


def records(session: Session, record_fields: Sequence[str]) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Record, Instance.data)
        .join(Instance, Instance.id == Record.instance_id)
        .order_by(Record.id.desc())
    )
    return [describe(record, data or {}, record_fields) for record, data in rows]


def readings(session: Session, code: str | None = None) -> list[dict[str, Any]]:
    query = select(MetricValue).order_by(MetricValue.recorded_at, MetricValue.id)
    if code:
        query = query.where(MetricValue.code == code)
    return [
        {
            "code": v.code,
            "value": v.value,
            "period": v.period,
            "instance_id": v.instance_id,
            "recorded_by": v.recorded_by,
            "recorded_at": v.recorded_at.isoformat(),
        }
        for v in session.scalars(query)
    ]
