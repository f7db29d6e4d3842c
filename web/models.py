"""The procedure's versions (流程模型): each process with its versions and open drafts,
a draft's review (lint, diff, impact; approve or reject), the change history
(变更履历) for the document-control file, and the model log. The modeler itself is
web/modeler.py."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from openpyxl import Workbook

from engine.errors import ValidationFailed
from web import backend
from web.inputs import int_arg
from web.ui import change_note

bp = Blueprint("models", __name__, url_prefix="/models")


def _models() -> Any:
    return backend().queries.models


@bp.get("")
@login_required
def index() -> Any:
    actor = current_user.actor
    processes = _models().overview(actor)
    policy = backend().policy
    return render_template(
        "models/index.html",
        processes=processes,
        may_model=policy.may_model(actor) and not actor.read_only,
        may_approve=policy.may_approve_models(actor) and not actor.read_only,
    )


@bp.get("/drafts/<int:draft_id>")
@login_required
def draft(draft_id: int) -> Any:
    actor = current_user.actor
    row, _content = _models().draft(actor, draft_id)
    diff = _models().diff(actor, draft_id)
    impact = None
    if request.args.get("impact"):
        impact = _models().impact(actor, draft_id, int_arg("limit", lowest=0) or 20)
    policy = backend().policy
    return render_template(
        "models/draft.html",
        draft=row,
        diff=diff,
        impact=impact,
        may_decide=(
            row.status == "submitted"
            and policy.may_approve_models(actor)
            and not actor.read_only
            and actor.username != row.author
        ),
        is_author=actor.username == row.author,
        may_migrate=policy.may_model(actor) and not actor.read_only,
    )


@bp.get("/drafts/<int:draft_id>/diagram.bpmn")
@login_required
def draft_diagram(draft_id: int) -> Any:
    _row, content = _models().draft(current_user.actor, draft_id)
    return Response(content["bpmn"], mimetype="application/xml")


@bp.post("/drafts/<int:draft_id>/approve")
@login_required
def approve(draft_id: int) -> Any:
    approved = backend().runtime.approve_draft(current_user.actor, draft_id)
    flash(
        _(
            "Version %(version)s of %(process)s is deployed.",
            version=approved.version,
            process=approved.process_id,
        ),
        "success",
    )
    return redirect(url_for("models.history", process_id=approved.process_id))


@bp.post("/drafts/<int:draft_id>/reject")
@login_required
def reject(draft_id: int) -> Any:
    try:
        backend().runtime.reject_draft(current_user.actor, draft_id, request.form.get("comment"))
    except ValidationFailed:
        flash(_("Say why the draft is rejected: the author reads it."), "error")
        return redirect(url_for("models.draft", draft_id=draft_id))
    flash(_("The draft went back to its author."), "success")
    return redirect(url_for("models.index"))


@bp.post("/drafts/<int:draft_id>/withdraw")
@login_required
def withdraw(draft_id: int) -> Any:
    backend().runtime.withdraw_draft(current_user.actor, draft_id)
    return redirect(url_for("models.draft", draft_id=draft_id))


HISTORY_COLUMNS = ("version", "deployed_at", "note", "author", "approver", "content_hash")


def _history_rows(process_id: str) -> list[dict[str, Any]]:
    return [
        {
            "version": v.version,
            "deployed_at": v.deployed_at.strftime("%Y-%m-%d %H:%M"),
            "note": change_note(v.note),
            "author": v.author or "",
            "approver": v.approver or "",
            "content_hash": v.content_hash,
        }
        for v in _models().history(current_user.actor, process_id)
    ]


def _headers() -> list[str]:
    return [
        _("Version"),
        _("Date"),
        _("Change note"),
        _("Drafted by"),
        _("Approved by"),
        _("Content hash"),
    ]


@bp.get("/<process_id>/history")
@login_required
def history(process_id: str) -> Any:
    versions = _models().history(current_user.actor, process_id)
    return render_template("models/history.html", process_id=process_id, versions=versions)


@bp.get("/<process_id>/history.csv")
@login_required
def history_csv(process_id: str) -> Any:
    rows = _history_rows(process_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_headers())
    for row in rows:
        writer.writerow([row[c] for c in HISTORY_COLUMNS])
    # A byte-order mark so that spreadsheet programs read the Chinese as UTF-8.
    return _download("\ufeff" + out.getvalue(), f"{process_id}-history.csv", "text/csv")


@bp.get("/<process_id>/history.xlsx")
@login_required
def history_xlsx(process_id: str) -> Any:
    rows = _history_rows(process_id)
    book = Workbook()
    sheet = book.active
    sheet.title = _("Change history")[:31]
    sheet.append(_headers())
    for row in rows:
        sheet.append([row[c] for c in HISTORY_COLUMNS])
    for column, width in zip("ABCDEF", (8, 18, 60, 16, 16, 66), strict=True):
        sheet.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return _download(
        out.getvalue(),
        f"{process_id}-history.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


def _download(body: Any, name: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.get("/log")
@login_required
def log() -> Any:
    actor = current_user.actor
    entries = _models().log(actor, request.args.get("process") or None)
    return render_template(
        "models/log.html", entries=entries, verification=_models().verify_log(actor)
    )
