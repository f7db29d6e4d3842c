"""One place that turns domain errors into HTTP: JSON under /api, a page elsewhere."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, flash, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, TooManyRequests

from engine.errors import DomainError


def wants_json() -> bool:
    return request.path.startswith("/api/")


def _reader_message(exc: DomainError) -> str:
    """The error in the reader's language when its reason is known (pages only: the API
    keeps the engine's English message)."""
    from web.ui import role_label

    params = exc.params
    said = {
        "read_only": lambda: _("This account may read but not change anything."),
        "needs_role": lambda: _(
            "This needs the role %(role)s.",
            role=", ".join(role_label(r.strip()) for r in str(params.get("role", "")).split(",")),
        ),
        "assigned_to_other": lambda: _(
            "This task is assigned to %(user)s.", user=params.get("user", "")
        ),
        "claimed_by_other": lambda: _(
            "%(user)s has claimed this task; ask them to release it.", user=params.get("user", "")
        ),
        "task_done": lambda: _("This task is already done or no longer needed."),
        "task_of_another": lambda: _("This task belongs to another role or person."),
        "needs_audit": lambda: _("The audit console is for auditors and administrators."),
        "dashboard": lambda: _("The dashboard is for those who may read every improvement."),
        "needs_modeler": lambda: _("This needs the process modeler role."),
        "needs_admin": lambda: _("This is for administrators."),
        "needs_approver": lambda: _(
            "Approving a version needs a role that may approve the procedure."
        ),
        "own_draft": lambda: _("The author of a draft may not approve it: another person must."),
        "needs_model_reader": lambda: _(
            "The procedure's versions and drafts are for modelers, approvers and auditors."
        ),
        "needs_metric_manager": lambda: _(
            "The metric catalogue is kept by the improvement owner and administrators."
        ),
        "draft_of_another": lambda: _("Only the author changes a draft."),
        "draft_unchanged": lambda: _("The draft changes nothing: there is nothing to approve."),
        "draft_lint_errors": lambda: _("The draft has lint errors; fix them before submitting."),
        "note_required": lambda: _("A submission needs a change note."),
        "comment_required": lambda: _("A rejection needs a comment for the author."),
        "no_task": lambda: _("There is no such task."),
        "changed_meanwhile": lambda: _(
            "Someone changed this improvement at the same moment. Reload and try again."
        ),
        "state_damaged": lambda: _(
            "The stored state of improvement #%(instance)s does not match its history, so"
            " nothing can be done on it. An administrator can rebuild it from the history"
            " (csi replay --repair %(instance)s).",
            instance=params.get("instance", ""),
        ),
    }.get(exc.reason or "")
    return said() if said is not None else exc.message


def error_response(status: int, code: str, message: str, details: Any = None) -> Any:
    if wants_json():
        return jsonify({"error": code, "message": message, "details": details}), status
    return (
        render_template("error.html", status=status, code=code, message=message, details=details),
        status,
    )


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Any:
        if exc.status >= 500:
            app.logger.error("command failed: %s", exc.message, exc_info=exc)
        message = exc.message if wants_json() else _reader_message(exc)
        return error_response(exc.status, exc.code, message, exc.details)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> Any:
        return error_response(400, "csrf", exc.description or "CSRF token missing or invalid")

    @app.errorhandler(TooManyRequests)
    def _too_many(exc: TooManyRequests) -> Any:
        """Sign-in refused for a while (web.security): the API says so in JSON, the
        log-in page says so above its form."""
        if wants_json():
            return error_response(
                429, "too_many_requests", "too many failed sign-ins: try again later"
            )
        from web.auth import login_page

        flash(_("Too many failed log-ins. Wait a few minutes and try again."), "error")
        return login_page(), 429

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        if isinstance(exc, MethodNotAllowed) and _no_resource(exc):
            exc = NotFound()
        return error_response(
            exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), exc.description or ""
        )


def _no_resource(exc: MethodNotAllowed) -> bool:
    """Werkzeug answers 405 for `PUT /api/v1/drafts/<id too large>` although no method
    finds anything there (the id converter refuses it): that is a missing resource."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for method in exc.valid_methods or ():
        try:
            adapter.match(request.path, method)
        except HTTPException:
            continue
        return False
    return True
