"""Keeping the metric catalogue and its history: create, edit, retire and reactivate a
metric; record historical values read from a file. For the roles the pack lets manage
metrics (`manage_metrics`) and administrators.

Each command owns its transaction. Invalid input raises `ValidationFailed` with
`details` = {field: [code]} (engine.metrics.catalogue's codes) or, for an import,
{line: [code]} (engine.metrics.importing's) and nothing is recorded. A retired metric
stays: its readings and the improvements that used it keep their history; forms no
longer offer it (engine.persistence.lookups)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.commands.context import CommandContext
from engine.errors import NotFound, ValidationFailed
from engine.metrics import catalogue, importing
from engine.metrics.catalogue import MetricFields
from engine.persistence.models import Metric, MetricValue, User
from engine.queries import metrics as metric_queries


class ImportRejected(ValidationFailed):
    """Some row of an import is wrong: `preview` lists every row with its errors."""

    def __init__(self, preview: importing.Preview) -> None:
        super().__init__("the file has rows that cannot be recorded", preview.errors)
        self.preview = preview


def _user_exists(session: Session) -> Any:
    return lambda username: (
        session.scalar(select(User.id).where(User.username == username)) is not None
    )


def _raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationFailed("the metric is not valid", errors)


def _metric(session: Session, code: str) -> Metric:
    metric = session.get(Metric, code)
    if metric is None:
        raise NotFound(f"no metric {code}")
    return metric


def create_metric(ctx: CommandContext, actor: Actor, code: str, values: Mapping[str, Any]) -> str:
    """A new, active metric; returns its code."""
    ctx.policy.require_manage_metrics(actor)
    code = code.strip().upper()
    errors: dict[str, list[str]] = {}
    fields = MetricFields.of(values, errors)
    with ctx.db.transaction() as session:
        catalogue.check_code(code, errors)
        if "code" not in errors and session.get(Metric, code) is not None:
            errors["code"] = [catalogue.TAKEN]
        catalogue.check_fields(fields, _user_exists(session), errors)
        _raise_if(errors)
        session.add(Metric(code=code, active=True, **fields.as_dict()))
        try:
            session.flush()
        except IntegrityError as exc:  # created at the same moment by someone else
            raise ValidationFailed("the code is taken", {"code": [catalogue.TAKEN]}) from exc
    return code


def update_metric(ctx: CommandContext, actor: Actor, code: str, values: Mapping[str, Any]) -> None:
    """Change what a metric says; its code, and so its history, stays."""
    ctx.policy.require_manage_metrics(actor)
    errors: dict[str, list[str]] = {}
    fields = MetricFields.of(values, errors)
    with ctx.db.transaction() as session:
        metric = _metric(session, code)
        catalogue.check_fields(fields, _user_exists(session), errors)
        _raise_if(errors)
        for name, value in fields.as_dict().items():
            setattr(metric, name, value)


def set_metric_active(ctx: CommandContext, actor: Actor, code: str, active: bool) -> None:
    """Retire a metric (active=False) or bring it back."""
    ctx.policy.require_manage_metrics(actor)
    with ctx.db.transaction() as session:
        _metric(session, code).active = active


def _raw(rows: Iterable[Any]) -> list[importing.RawRow]:
    listed = list(rows)
    if listed and all(isinstance(r, importing.RawRow) for r in listed):
        if len(listed) > importing.MAX_ROWS:
            raise importing.FileRefused(importing.TOO_MANY_ROWS)
        return listed
    return importing.raw_rows(listed)


def import_readings(
    ctx: CommandContext,
    actor: Actor,
    rows: Iterable[Mapping[str, Any]] | Iterable[importing.RawRow],
    default_code: str | None = None,
) -> importing.Preview:
    """Record every row, or none: the rows are checked again in the transaction that
    records them, so two imports of the same period cannot both pass. Raises
    `ImportRejected` with the per-row errors."""
    ctx.policy.require_manage_metrics(actor)
    try:
        raw = _raw(rows)
    except importing.FileRefused as exc:
        raise ImportRejected(importing.refused(exc.problem)) from exc
    now = ctx.clock()
    with ctx.db.transaction() as session:
        preview = metric_queries.check_import(session, raw, default_code)
        if not preview.ok:
            raise ImportRejected(preview)
        session.add_all(
            MetricValue(
                code=row.code,
                value=row.value,
                period=row.period,
                instance_id=None,
                recorded_by=actor.username,
                recorded_at=now,
            )
            for row in preview.rows
        )
    return preview


def import_file(
    ctx: CommandContext, actor: Actor, content: bytes, filename: str, default_code: str | None
) -> importing.Preview:
    """Read a CSV or xlsx file and record its rows (all or none)."""
    ctx.policy.require_manage_metrics(actor)
    try:
        rows = importing.read_table(content, filename)
    except importing.FileRefused as exc:
        raise ImportRejected(importing.refused(exc.problem)) from exc
    return import_readings(ctx, actor, rows, default_code)
