"""The metric catalogue and one metric's history, as plain views: its readings (who
reported which value for which period, through which improvement or an import) and
the baseline and target each improvement set for it (the `targets` rows of its data,
as set_baseline_targets and rebaseline keep them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from engine.metrics import importing, periods
from engine.persistence.models import Instance, Metric, MetricValue, Record


@dataclass(frozen=True)
class MetricRow:
    code: str
    name_zh: str
    name_en: str
    category: str
    unit: str
    direction: str
    method: str
    owner: str
    active: bool

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class ReadingRow:
    period: str
    value: float
    recorded_by: str | None
    recorded_at: datetime
    instance_id: int | None
    record_number: str | None

    @property
    def starts(self) -> date:
        return periods.start_of(self.period) or self.recorded_at.date()


@dataclass(frozen=True)
class Band:
    """What one improvement set for the metric."""

    number: str
    instance_id: int
    status: str
    baseline: float | None
    target: float | None


@dataclass(frozen=True)
class MetricHistory:
    metric: MetricRow
    readings: list[ReadingRow]  # oldest period first
    bands: list[Band]  # newest improvement first

    def chart(self) -> dict[str, Any]:
        """What the page's chart draws, as JSON."""
        return {
            "code": self.metric.code,
            "unit": self.metric.unit,
            "direction": self.metric.direction,
            "points": [{"period": r.period, "value": r.value} for r in self.readings],
            "bands": [
                {"number": b.number, "baseline": b.baseline, "target": b.target}
                for b in self.bands
                if b.baseline is not None or b.target is not None
            ],
        }


def metric_row(metric: Metric) -> MetricRow:
    return MetricRow(
        metric.code,
        metric.name_zh,
        metric.name_en,
        metric.category,
        metric.unit,
        metric.direction,
        metric.method or "",
        metric.owner or "",
        bool(metric.active),
    )


def catalogue(
    session: Session, active: bool | None = None, category: str | None = None
) -> list[MetricRow]:
    query = select(Metric).order_by(Metric.code)
    if active is not None:
        query = query.where(Metric.active.is_(active))
    if category:
        query = query.where(Metric.category == category)
    return [metric_row(m) for m in session.scalars(query)]


def metric(session: Session, code: str) -> MetricRow | None:
    found = session.get(Metric, code)
    return metric_row(found) if found is not None else None


def readings(session: Session, code: str) -> list[ReadingRow]:
    rows = session.execute(
        select(MetricValue, Record.number)
        .outerjoin(Record, Record.instance_id == MetricValue.instance_id)
        .where(MetricValue.code == code)
        .order_by(MetricValue.recorded_at, MetricValue.id)
    )
    found = [
        ReadingRow(v.period, v.value, v.recorded_by, v.recorded_at, v.instance_id, number)
        for v, number in rows
    ]
    return sorted(found, key=lambda r: (r.starts, r.recorded_at))


def _number(value: Any) -> float | None:
    return importing.number(value) if value not in (None, "") else None


def bands(session: Session, code: str) -> list[Band]:
    """Each improvement whose targets name the metric. The text match only narrows the
    rows read (JSON is text in both SQLite and PostgreSQL); the rows decide."""
    rows = session.execute(
        select(Record.number, Record.instance_id, Record.status, Instance.data)
        .join(Instance, Instance.id == Record.instance_id)
        .where(cast(Instance.data, String).contains(f'"{code}"'))
        .order_by(Record.id.desc())
    )
    found: list[Band] = []
    for number, instance_id, status, data in rows:
        targets = (data or {}).get("targets") or []
        for target in targets if isinstance(targets, list) else []:
            if isinstance(target, dict) and target.get("code") == code:
                found.append(
                    Band(
                        number,
                        instance_id,
                        status,
                        _number(target.get("baseline")),
                        _number(target.get("target")),
                    )
                )
                break
    return found


def recorded_periods(session: Session, codes: Iterable[str]) -> set[tuple[str, str]]:
    rows = session.execute(
        select(MetricValue.code, MetricValue.period).where(MetricValue.code.in_(set(codes)))
    )
    return {(c, periods.normalized(p)) for c, p in rows if p}


def check_import(
    session: Session, rows: list[importing.RawRow], default_code: str | None
) -> importing.Preview:
    """The rows checked against the catalogue and what is already recorded."""
    known = set(session.scalars(select(Metric.code)))
    codes = {(r.code or default_code or "").strip().upper() for r in rows} & known
    return importing.check(rows, default_code, known, recorded_periods(session, codes))
