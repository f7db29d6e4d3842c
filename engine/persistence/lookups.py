"""What forms read from the database besides the instance: users by role and the
metric catalogue for option lists, the latest recorded value of a metric for
prefills. Commands validate and pages show against the very same lists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.forms.options import Option, OptionSource
from engine.forms.prefill import Lookups
from engine.persistence.models import Metric, MetricValue, User


def users_by_role(session: Session) -> Callable[[str | None], list[Option]]:
    """Active users by role; read only if a form asks for them."""
    loaded: list[User] = []

    def pick(role: str | None) -> list[Option]:
        if not loaded:
            loaded.extend(
                session.scalars(select(User).where(User.active.is_(True)).order_by(User.username))
            )
        return [
            (u.username, f"{u.display_name} ({u.username})" if u.display_name else u.username)
            for u in loaded
            if role is None or u.has_role(role)
        ]

    return pick


def catalogue_options(session: Session) -> Callable[[], list[Option]]:
    """The active metrics: a retired one is no longer offered (its history stays)."""

    def options() -> list[Option]:
        return [
            (m.code, f"{m.code} {m.name_zh} / {m.name_en} ({m.unit})")
            for m in session.scalars(
                select(Metric).where(Metric.active.is_(True)).order_by(Metric.code)
            )
        ]

    return options


def option_source(session: Session, data: Mapping[str, Any]) -> OptionSource:
    return OptionSource(users_by_role(session), data, catalogue_options(session))


def lookups(session: Session) -> Lookups:
    def latest(code: str) -> float | None:
        return session.scalar(
            select(MetricValue.value)
            .where(MetricValue.code == code)
            .order_by(MetricValue.recorded_at.desc(), MetricValue.id.desc())
            .limit(1)
        )

    def catalogue() -> dict[str, dict[str, Any]]:
        return {
            m.code: {
                "name_zh": m.name_zh,
                "name_en": m.name_en,
                "category": m.category,
                "unit": m.unit,
                "direction": m.direction,
                "method": m.method,
            }
            for m in session.scalars(select(Metric))
        }

    return Lookups(latest, catalogue)
