"""服务改进记录台账: the register of records with filters, sorting and paging, one record
as a page, as a printable document and as a workbook, and the register as a workbook."""

from __future__ import annotations

import re
import tempfile
from typing import Any

from flask import Blueprint, Response, render_template, request, send_file
from flask_login import current_user, login_required
from markupsafe import Markup

from engine.documents.record import record_fragment, record_html, record_style_hash, record_xlsx
from engine.errors import NotFound
from engine.queries.register import RegisterFilter
from web import backend, ui

bp = Blueprint("improvements", __name__, url_prefix="/improvements")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Record numbers as the register keeps them (SI-2026-0001); anything else is no record.
_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")


def register_xlsx_response(actor: Any, args: Any, locale: str) -> Response:
    """The register workbook of what `args` filter, written to a temporary file and
    streamed from it (a large register never sits in memory)."""
    chosen = RegisterFilter.from_args(args)
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the response when sent
    backend().queries.register_xlsx(actor, chosen, spool, locale)
    spool.seek(0)
    response = send_file(
        spool,
        mimetype=XLSX,
        as_attachment=True,
        download_name="improvement-register.xlsx",
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _locale() -> str:
    return ui.form_locale()


@bp.get("")
@login_required
def index() -> Any:
    queries, actor = backend().queries, current_user.actor
    if request.args.get("format") == "xlsx":
        return register_xlsx_response(actor, request.args, _locale())
    chosen = RegisterFilter.from_args(request.args)
    page = queries.register_page(actor, chosen)
    labels = queries.register_labels()
    stages = [(key, ui.pick(names, key)) for key, names in labels.stages.items()]
    sources = [
        (value, ui.enum_label("source", value))
        for value in queries.dictionary.enum_values("source")
    ]
    return render_template(
        "improvements/index.html",
        page=page,
        chosen=chosen,
        stages=stages,
        stage_names=dict(stages),
        sources=sources,
        years=queries.register_years(actor),
        gap_labels=_gap_labels(),
    )


def _gap_labels() -> dict[str, str]:
    schema = ui.column_schema(ui.schema_of("gaps"), "status")
    return {value: ui.enum_label("status", value, schema) for value in schema.get("enum") or []}


def _number(number: str) -> str:
    if not _NUMBER.fullmatch(number):
        raise NotFound(f"no record {number}")
    return number


@bp.get("/<number>")
@login_required
def show(number: str) -> Any:
    queries = backend().queries
    doc = queries.record_document(current_user.actor, _number(number))
    return render_template(
        "improvements/record.html",
        doc=doc,
        attached=queries.evidence.attachments_of(current_user.actor, doc.number),
        body=Markup(record_fragment(doc, _locale())),  # noqa: S704 - autoescaped by its template
    )


@bp.get("/<number>/print")
@login_required
def print_view(number: str) -> Any:
    doc = backend().queries.record_document(current_user.actor, _number(number))
    response = Response(record_html(doc, _locale()), mimetype="text/html")
    # The page stands alone with its style inline; only that exact style may apply.
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src {record_style_hash()}; img-src data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    )
    return response


@bp.get("/<number>/xlsx")
@login_required
def xlsx(number: str) -> Any:
    doc = backend().queries.record_document(current_user.actor, _number(number))
    response = Response(record_xlsx(doc, _locale()), mimetype=XLSX)
    response.headers["Content-Disposition"] = f'attachment; filename="{doc.number}.xlsx"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
