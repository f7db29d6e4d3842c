"""The audit console (read-only): search instances, verify an instance's hash chain and
replay, step through its history, export it. Who may: the access policy's auditors."""

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
from flask_login import current_user

from engine.errors import NotFound
from engine.queries import audit as audit_queries
from engine.workflow.model import Element
from web import backend, ui
from web.inputs import int_arg
from web.instances import history_download

bp = Blueprint("audit", __name__, url_prefix="/audit")

STEP_TEMPLATE = "_audit_step.html"


@bp.before_request
def _auditors_only() -> Any:
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    backend().policy.require_audit(current_user.actor)
    return None


@bp.app_template_filter("pretty_json")
def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


@bp.get("")
def search() -> Any:
    sources = backend().queries.dictionary.enum_values("source")
    filters = audit_queries.SearchFilters.parse(request.args, sources)
    rows, more, people = backend().queries.audit_search(current_user.actor, filters, get_timezone())
    return render_template(
        "audit_search.html",
        filters=filters,
        rows=rows,
        more=more,
        people=people,
        sources=sources,
        statuses=audit_queries.STATUSES,
        limit=audit_queries.SEARCH_LIMIT,
    )


def _split(state: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The step's data: the record's fields first, then every other variable (working
    variables included: an auditor sees all of the state)."""
    if state is None:
        return {}, {}
    main, other = ui.data_order(state.data)
    for key, value in state.data.items():
        if key not in main and key not in other and not ui.is_empty(value):
            other[key] = value
    return main, other


def _fragments(step: audit_queries.StepView, elements: dict[str, Element]) -> dict[str, str]:
    """The step's panels as HTML, from the same macros the page renders at load."""
    main, other = _split(step.state)

    def macro(name: str) -> Any:
        return get_template_attribute(STEP_TEMPLATE, name)

    return {
        "caption": str(macro("caption")(step, elements)),
        "event": str(macro("event_panel")(step, elements)),
        "changes": str(macro("changes_panel")(step)),
        "data": str(macro("data_panel")(step, main, other)),
    }


@bp.get("/instances/<int:instance_id>")
def instance(instance_id: int) -> Any:
    view, step_no, step = backend().queries.audit_view(
        current_user.actor, instance_id, int_arg("step", lowest=0)
    )
    elements = backend().queries.elements_of(view.instance)
    main, other = _split(step.state)
    return render_template(
        "audit_instance.html",
        view=view,
        instance=view.instance,
        record=view.record,
        step=step,
        step_no=step_no,
        total=view.replay.steps,
        elements=elements,
        main_data=main,
        other_data=other,
    )


@bp.get("/instances/<int:instance_id>/steps/<int:k>")
def step(instance_id: int, k: int) -> Any:
    instance_row, view = backend().queries.audit_step(current_user.actor, instance_id, k)
    if not 1 <= k <= view.result.steps:
        raise NotFound(f"instance {instance_id} has no step {k}")
    body = view.as_dict()
    body["html"] = _fragments(view, backend().queries.elements_of(instance_row))
    return jsonify(body)


@bp.get("/anchors.json")
def anchors_file() -> Response:
    """Every chain's head, to keep outside the database (csi verify-audit --anchors)."""
    document = backend().queries.anchors(current_user.actor)
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
    return history_download(instance_id, "json")


@bp.get("/instances/<int:instance_id>/history.csv")
def history_csv(instance_id: int) -> Response:
    return history_download(instance_id, "csv")
