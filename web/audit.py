"""The audit console (Auditor or Admin, read-only): search instances, verify an
instance's hash chain and replay, step through its history, export it."""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    get_template_attribute,
    jsonify,
    render_template,
    request,
)
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_login import current_user

from engine import history, queries
from engine.errors import Forbidden, NotFound
from engine.store import Instance
from web import audit_queries, services, ui

bp = Blueprint("audit", __name__, url_prefix="/audit")
bp.record_once(lambda state: ui.install(state.app))

STEP_TEMPLATE = "_audit_step.html"


@bp.before_request
def _auditors_only() -> Any:
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    if not ui.can_read_all():
        raise Forbidden(_("The audit console is for auditors and administrators."))
    return None


@bp.app_template_filter("pretty_json")
def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


@bp.get("")
def search() -> Any:
    filters = audit_queries.SearchFilters.parse(request.args)
    with services().db.sessions() as session:
        rows, more = audit_queries.search(session, filters, get_timezone())
        people = audit_queries.people(session)
        session.expunge_all()
    return render_template(
        "audit_search.html",
        filters=filters,
        rows=rows,
        more=more,
        people=people,
        sources=audit_queries.SOURCES,
        statuses=audit_queries.STATUSES,
        limit=audit_queries.SEARCH_LIMIT,
    )


def _split(state: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The step's data: the record's fields first, then every other variable (working
    variables included: an auditor sees all of the state)."""
    if state is None:
        return {}, {}
    main, other = ui.split_instance_data(state.data)
    for key, value in state.data.items():
        if key not in main and key not in other and not ui.is_empty(value):
            other[key] = value
    return main, other


def _fragments(step: audit_queries.StepView, names: dict[str, str]) -> dict[str, str]:
    """The step's panels as HTML, from the same macros the page renders at load."""
    state = step.state
    main, other = _split(state)

    def macro(name: str) -> Any:
        return get_template_attribute(STEP_TEMPLATE, name)

    return {
        "caption": str(macro("caption")(step, names)),
        "event": str(macro("event_panel")(step, names)),
        "changes": str(macro("changes_panel")(step)),
        "data": str(macro("data_panel")(step, main, other)),
    }


@bp.get("/instances/<int:instance_id>")
def instance(instance_id: int) -> Any:
    with services().db.snapshot() as session:
        view = audit_queries.audit_view(session, instance_id)
        total = view.replay.steps
        step_no = audit_queries.initial_step(view.replay, request.args.get("step", type=int))
        step = audit_queries.step_view(
            session, instance_id, step_no, view.replay, view.verification
        )
        names = ui.instance_element_names(session, view.instance)
        session.expunge_all()
    main, other = _split(step.state)
    return render_template(
        "audit_instance.html",
        view=view,
        instance=view.instance,
        record=view.record,
        step=step,
        step_no=step_no,
        total=total,
        names=names,
        main_data=main,
        other_data=other,
    )


@bp.get("/instances/<int:instance_id>/steps/<int:k>")
def step(instance_id: int, k: int) -> Any:
    with services().db.snapshot() as session:
        instance_row = session.get(Instance, instance_id)
        if instance_row is None:
            raise NotFound(f"no instance {instance_id}")
        view = audit_queries.step_view(session, instance_id, k)
        if not 1 <= k <= view.result.steps:
            raise NotFound(f"instance {instance_id} has no step {k}")
        names = ui.instance_element_names(session, instance_row)
        body = view.as_dict()
        body["html"] = _fragments(view, names)
    return jsonify(body)


def _history(instance_id: int, fmt: str) -> Response:
    with services().db.snapshot() as session:
        rows = queries.event_dicts(session, instance_id)
        view = queries.instance_view(session, instance_id, with_events=False)
        number = view.record.number if view.record else f"instance-{instance_id}"
    text = history.export(rows, fmt)
    if fmt == "csv":
        # A byte-order mark, so that spreadsheet programs read the Chinese text as UTF-8.
        text, mimetype = "\ufeff" + text, "text/csv"
    else:
        mimetype = "application/json"
    return Response(
        text,
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="{number}-history.{fmt}"',
            "Cache-Control": "no-store",
        },
    )


@bp.get("/anchors.json")
def anchors() -> Response:
    """Every chain's head, to keep outside the database (csi verify-audit --anchors)."""
    with services().db.snapshot() as session:
        document = history.anchors(session)
    return Response(
        json.dumps(document, indent=1),
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="csi-anchors-{document["taken_at"][:10]}.json"',
            "Cache-Control": "no-store",
        },
    )


@bp.get("/instances/<int:instance_id>/history.json")
def history_json(instance_id: int) -> Response:
    return _history(instance_id, "json")


@bp.get("/instances/<int:instance_id>/history.csv")
def history_csv(instance_id: int) -> Response:
    return _history(instance_id, "csv")
