"""Metrics (度量指标): the catalogue with its filters; creating, editing, retiring and
reactivating a metric (for those the policy lets manage metrics); one metric's history
as a chart with each improvement's baseline and target and as a table of readings;
importing historical values from CSV or xlsx, previewed before anything is recorded.

The tables are the page; the chart draws the same data from a JSON script element
(web/static/js/metric-chart.js, Chart.js vendored under static/vendor/chartjs)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.commands.metrics import ImportRejected
from engine.errors import ValidationFailed
from engine.metrics import catalogue, importing
from engine.metrics.catalogue import CATEGORIES, DIRECTIONS, EDITABLE
from web import backend

bp = Blueprint("metrics", __name__, url_prefix="/metrics")

# A preview page sends its rows back as JSON: as many rows as a file may hold.
MAX_ROWS_FIELD = importing.MAX_ROWS * 200


def category_label(key: str) -> str:
    return {
        "quality": _("Quality"),
        "effect": _("Effect"),
        "cost": _("Cost"),
        "efficiency": _("Efficiency"),
    }.get(key, key)


def direction_label(key: str) -> str:
    return {"higher_better": _("Higher is better"), "lower_better": _("Lower is better")}.get(
        key, key
    )


def _field_error(code: str) -> str:
    return {
        catalogue.REQUIRED: _("This field is required."),
        catalogue.TOO_LONG: _("The text is too long."),
        catalogue.INVALID_CODE: _(
            "Use an uppercase letter, then up to 31 uppercase letters, digits or underscores."
        ),
        catalogue.TAKEN: _("A metric with this code exists."),
        catalogue.UNKNOWN_CHOICE: _("Choose from the list."),
        catalogue.UNKNOWN_USER: _("There is no user of this name."),
        catalogue.NOT_TEXT: _("This field takes text."),
    }.get(code, code)


def import_error(code: str) -> str:
    return {
        importing.TOO_LARGE: _("The file is too large."),
        importing.TOO_MANY_ROWS: _("The file has more than %(n)d rows.", n=importing.MAX_ROWS),
        importing.UNREADABLE: _("The file is neither a CSV nor an xlsx file that can be read."),
        importing.NO_COLUMNS: _("The first row must name the columns period and value (and code)."),
        importing.EMPTY: _("The file has no rows of values."),
        importing.UNKNOWN_CODE: _("No metric has this code."),
        importing.MISSING_CODE: _("The row names no metric."),
        importing.BAD_NUMBER: _("The value is not a number."),
        importing.MISSING_VALUE: _("The value is missing."),
        importing.BAD_PERIOD: _(
            "The period is not one of 2026, 2026-H2, 2026-Q4, 2026-11, 2026-W47, 2026-11-30."
        ),
        importing.DUPLICATE_IN_FILE: _("This metric and period are in the file twice."),
        importing.ALREADY_RECORDED: _(
            "A value of this metric for this period is already recorded."
        ),
    }.get(code, code)


def _may_manage() -> bool:
    return bool(backend().policy.may_manage_metrics(current_user.actor))


@bp.app_context_processor
def _metric_labels() -> dict[str, Any]:
    return {
        "category_label": category_label,
        "direction_label": direction_label,
        "import_error": import_error,
    }


@bp.get("")
@login_required
def index() -> Any:
    status = request.args.get("status", "active")
    status = status if status in ("active", "retired", "all") else "active"
    category = request.args.get("category", "")
    category = category if category in CATEGORIES else ""
    rows = backend().queries.metrics(
        current_user.actor, {"active": True, "retired": False}.get(status), category or None
    )
    return render_template(
        "metrics/index.html",
        rows=rows,
        status=status,
        category=category,
        categories=CATEGORIES,
        may_manage=_may_manage(),
    )


def _posted() -> dict[str, str]:
    return {name: request.form.get(name, "") for name in ("code", *EDITABLE)}


def _render_form(
    values: dict[str, Any], code: str | None, errors: Any = None, status: int = 200
) -> Any:
    messages = {f: [_field_error(c) for c in codes] for f, codes in (errors or {}).items()}
    return (
        render_template(
            "metrics/form.html",
            values=values,
            code=code,
            errors=messages,
            categories=CATEGORIES,
            directions=DIRECTIONS,
        ),
        status,
    )


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    backend().policy.require_manage_metrics(current_user.actor)
    if request.method == "GET":
        empty = dict.fromkeys(("code", *EDITABLE), "")
        return _render_form({**empty, "category": "quality", "direction": "higher_better"}, None)
    values = _posted()
    try:
        code = backend().runtime.create_metric(current_user.actor, values["code"], values)
    except ValidationFailed as exc:
        return _render_form(values, None, exc.details, 422)
    flash(_("Metric %(code)s created.", code=code), "success")
    return redirect(url_for("metrics.show", code=code))


@bp.route("/<code>/edit", methods=["GET", "POST"])
@login_required
def edit(code: str) -> Any:
    actor = current_user.actor
    backend().policy.require_manage_metrics(actor)
    metric = backend().queries.metric(actor, code)
    if request.method == "GET":
        return _render_form(metric.as_dict(), code)
    values = {**_posted(), "code": code}
    try:
        backend().runtime.update_metric(actor, code, values)
    except ValidationFailed as exc:
        return _render_form(values, code, exc.details, 422)
    flash(_("Metric %(code)s saved.", code=code), "success")
    return redirect(url_for("metrics.show", code=code))


@bp.post("/<code>/retire")
@login_required
def retire(code: str) -> Any:
    backend().runtime.retire_metric(current_user.actor, code)
    flash(
        _(
            "Metric %(code)s retired: it stays in history and is no longer offered in forms.",
            code=code,
        ),
        "success",
    )
    return redirect(url_for("metrics.show", code=code))


@bp.post("/<code>/reactivate")
@login_required
def reactivate(code: str) -> Any:
    backend().runtime.reactivate_metric(current_user.actor, code)
    flash(_("Metric %(code)s is offered in forms again.", code=code), "success")
    return redirect(url_for("metrics.show", code=code))


@bp.get("/<code>")
@login_required
def show(code: str) -> Any:
    history = backend().queries.metric_history(current_user.actor, code)
    return render_template(
        "metrics/show.html",
        history=history,
        metric=history.metric,
        chart=history.chart(),
        may_manage=_may_manage(),
    )


def _import_page(
    code: str | None, preview: importing.Preview | None = None, status: int = 200
) -> Any:
    rows = [
        {"line": r.line, "code": r.code, "period": r.period, "value": r.value}
        for r in (preview.rows if preview else ())
    ]
    return (
        render_template(
            "metrics/import.html",
            code=code,
            preview=preview,
            rows_json=json.dumps(rows, ensure_ascii=False),
            max_rows=importing.MAX_ROWS,
            max_megabytes=importing.MAX_BYTES // (1024 * 1024),
        ),
        status,
    )


def _code_arg() -> str | None:
    code = (request.values.get("code") or "").strip().upper()
    return code or None


@bp.route("/import", methods=["GET", "POST"])
@login_required
def import_file() -> Any:
    """Upload (multipart) → the preview; nothing is recorded here."""
    actor = current_user.actor
    backend().policy.require_manage_metrics(actor)
    code = _code_arg()
    if code is not None:
        backend().queries.metric(actor, code)  # 404 for a code that names no metric
    if request.method == "GET":
        return _import_page(code)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        flash(_("Choose a CSV or xlsx file."), "error")
        return _import_page(code, status=422)
    content = upload.read(importing.MAX_BYTES + 1)
    preview = backend().queries.preview_import(actor, content, upload.filename, code)
    return _import_page(code, preview, 200 if preview.ok else 422)


@bp.post("/import/confirm")
@login_required
def import_confirm() -> Any:
    """Record the previewed rows, checked again: all of them, or none."""
    actor = current_user.actor
    backend().policy.require_manage_metrics(actor)
    code = _code_arg()
    text = request.form.get("rows", "")
    try:
        rows = json.loads(text) if len(text) <= MAX_ROWS_FIELD else None
    except ValueError:
        rows = None
    if not isinstance(rows, list):
        raise ValidationFailed("the previewed rows are missing", {"rows": ["invalid"]})
    try:
        recorded = backend().runtime.import_readings(actor, rows, code)
    except ImportRejected as exc:
        return _import_page(code, exc.preview, 422)
    flash(_("%(n)d values recorded.", n=len(recorded.rows)), "success")
    codes = sorted({r.code for r in recorded.rows})
    if len(codes) == 1:
        return redirect(url_for("metrics.show", code=codes[0]))
    return redirect(url_for("metrics.index"))
