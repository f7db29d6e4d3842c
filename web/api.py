"""JSON API under /api/v1 (DESIGN section 7). Bearer tokens, no cookies, so no CSRF."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import validate_csrf
from wtforms.validators import ValidationError

from engine.access import Actor
from engine.errors import Forbidden, NotFound, ValidationFailed
from engine.inputs import is_id
from engine.queries.dashboard import as_json
from engine.queries.register import RegisterFilter
from web import attachments, backend
from web.auth import SignedInUser, Unauthorized, check_password, issue_token, user_from_token
from web.improvements import register_xlsx_response
from web.inputs import FORM_TYPES, int_arg, json_body

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Records per page of the JSON register unless `per_page` says (at most 1000).
API_PER_PAGE = 100


def _exempt_from_csrf(state: Any) -> None:
    state.app.extensions["csrf"].exempt(bp)


bp.record_once(_exempt_from_csrf)


def token_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("send 'Authorization: Bearer <token>' from POST /api/v1/auth/token")
        g.api_user = user_from_token(token.strip())
        return view(*args, **kwargs)

    return wrapper


def token_or_session(view: Callable[..., Any]) -> Callable[..., Any]:
    """A bearer token, or the signed-in session of the app's own pages (the modeler
    calls these endpoints from the browser): then, as for every page, a request that
    changes something must carry the session's CSRF token (`X-CSRFToken`)."""
    token_view = token_required(view)

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.headers.get("Authorization") or not current_user.is_authenticated:
            return token_view(*args, **kwargs)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            try:
                validate_csrf(request.headers.get("X-CSRFToken", ""))
            except ValidationError as exc:
                raise Forbidden("the request lacks the page's CSRF token", reason="csrf") from exc
        g.api_user = current_user
        return view(*args, **kwargs)

    return wrapper


def actor() -> Actor:
    user: SignedInUser = g.api_user
    return user.actor


OPENAPI = Path(__file__).with_name("openapi.json")


@bp.get("/openapi.json")
def openapi() -> Any:
    """The API's OpenAPI 3.1 description (written by hand beside this module)."""
    return Response(OPENAPI.read_bytes(), mimetype="application/json")


@bp.post("/auth/token")
def token() -> Any:
    body: Any = request.form if request.mimetype in FORM_TYPES else json_body()
    given = {k: body.get(k, "") for k in ("username", "password")}
    wrong = {k: ["not a string"] for k, v in given.items() if not isinstance(v, str)}
    if wrong:
        raise ValidationFailed("username and password are strings", wrong)
    user = check_password(given["username"], given["password"])
    if user is None:
        raise Unauthorized("wrong username or password")
    return jsonify({"token": issue_token(user), "token_type": "Bearer", "username": user.username})


@bp.get("/tasks")
@token_required
def list_tasks() -> Any:
    instance = int_arg("instance")
    return jsonify([t.as_dict() for t in backend().queries.inbox(actor(), instance)])


@bp.get("/tasks/<task_id>")
@token_required
def get_task(task_id: str) -> Any:
    page, _ = backend().queries.task_page(actor(), task_id)
    return jsonify(
        {
            **page.task.as_dict(),
            "title": page.form.title,
            "description": page.form.description,
            "schema": page.schema,
            "data": page.data,
            "context": page.context,
            "record_number": page.record_number,
        }
    )


@bp.post("/tasks/<task_id>/claim")
@token_required
def claim(task_id: str) -> Any:
    result = backend().runtime.claim_task(task_id, actor())
    return jsonify({"ok": True, "instance_id": result.instance_id, "claimed_by": actor().username})


@bp.post("/tasks/<task_id>/unclaim")
@token_required
def unclaim(task_id: str) -> Any:
    result = backend().runtime.unclaim_task(task_id, actor())
    return jsonify({"ok": True, "instance_id": result.instance_id})


@bp.post("/tasks/<task_id>/complete")
@token_required
def complete(task_id: str) -> Any:
    body = json_body()
    data = body.get("data", body) if isinstance(body.get("data"), dict) else body
    result = backend().runtime.complete_task(task_id, actor(), data)
    return jsonify(
        {
            "ok": True,
            "instance_id": result.instance_id,
            "status": result.status,
            "open_tasks": result.open_tasks,
            "next_instance_id": result.started_instance_id,
        }
    )


@bp.post("/instances")
@token_required
def start() -> Any:
    body = json_body()
    process = body.get("process")
    data = body.get("data")
    data = {} if data is None else data
    result = backend().runtime.start_instance(actor(), process, data)
    return jsonify(
        {"id": result.instance_id, "status": result.status, "open_tasks": result.open_tasks}
    ), 201


@bp.get("/instances/<int:instance_id>")
@token_required
def get_instance(instance_id: int) -> Any:
    return jsonify(backend().queries.instance(actor(), instance_id, with_events=False).as_dict())


@bp.post("/instances/<int:instance_id>/migrate")
@token_required
def migrate_instance(instance_id: int) -> Any:
    version = json_body().get("version")
    if version is not None and not is_id(version):
        raise ValidationFailed("version must be a version number", {"version": ["not a version"]})
    result = backend().runtime.migrate_instance(instance_id, actor(), version)
    return jsonify(
        {"id": result.instance_id, "status": result.status, "open_tasks": result.open_tasks}
    )


@bp.get("/instances/<int:instance_id>/history")
@token_required
def instance_history(instance_id: int) -> Any:
    return jsonify(backend().queries.history(actor(), instance_id))


@bp.get("/instances/<int:instance_id>/verify")
@token_required
def verify(instance_id: int) -> Any:
    return jsonify(backend().queries.verify(actor(), instance_id).as_dict())


@bp.get("/instances/<int:instance_id>/replay")
@token_required
def replay_instance(instance_id: int) -> Any:
    step = int_arg("step", lowest=0)
    return jsonify(backend().queries.replay(actor(), instance_id, step).as_dict())


@bp.post("/models")
@token_required
def deploy_model() -> Any:
    upload = request.files.get("file")
    if upload is not None:
        xml, filename = upload.read(), upload.filename or "diagram.bpmn"
    else:
        xml, filename = request.get_data(), request.args.get("filename", "diagram.bpmn")
    deployed = backend().runtime.deploy(actor(), xml, filename)
    body = {
        "created": deployed.created,
        "definitions": [d.as_dict() for d in deployed.definitions],
    }
    # 201 for a new version; the same diagram again changes nothing: 200.
    return jsonify(body), 201 if deployed.created else 200


# ---- the procedure: versions, drafts, approval ----------------------------------------------


def _models() -> Any:
    return backend().queries.models


def _draft_body() -> tuple[Any, Any, Any]:
    body = json_body()
    return body.get("bpmn"), body.get("forms"), body.get("note")


@bp.get("/models")
@token_or_session
def list_models() -> Any:
    return jsonify({"processes": [p.as_dict() for p in _models().overview(actor())]})


@bp.get("/models/<process_id>/versions/<int:version>")
@token_or_session
def model_version(process_id: str, version: int) -> Any:
    return jsonify(_models().version(actor(), process_id, version))


@bp.get("/models/<process_id>/context")
@token_or_session
def model_context(process_id: str) -> Any:
    return jsonify(_models().context(actor()))


@bp.post("/models/<process_id>/lint")
@token_or_session
def lint_model(process_id: str) -> Any:
    xml, forms, _ = _draft_body()
    if not isinstance(xml, str):
        raise ValidationFailed("bpmn must be the diagram's XML as text", {"bpmn": ["not text"]})
    return jsonify(_models().lint(actor(), process_id, xml.encode("utf-8"), forms or {}))


@bp.post("/models/<process_id>/drafts")
@token_or_session
def create_draft(process_id: str) -> Any:
    xml, forms, note = _draft_body()
    saved = backend().runtime.create_draft(actor(), process_id, xml, forms, note)
    return jsonify(saved.as_dict()), 201


@bp.get("/drafts/<int:draft_id>")
@token_or_session
def get_draft(draft_id: int) -> Any:
    draft, content = _models().draft(actor(), draft_id)
    return jsonify({**draft.as_dict(), **content})


@bp.put("/drafts/<int:draft_id>")
@token_or_session
def update_draft(draft_id: int) -> Any:
    xml, forms, note = _draft_body()
    return jsonify(backend().runtime.update_draft(actor(), draft_id, xml, forms, note).as_dict())


@bp.get("/drafts/<int:draft_id>/diff")
@token_or_session
def draft_diff(draft_id: int) -> Any:
    return jsonify(_models().diff(actor(), draft_id))


@bp.get("/drafts/<int:draft_id>/impact")
@token_or_session
def draft_impact(draft_id: int) -> Any:
    limit = int_arg("limit", lowest=0)
    return jsonify(_models().impact(actor(), draft_id, 50 if limit is None else limit))


@bp.post("/drafts/<int:draft_id>/submit")
@token_or_session
def submit_draft(draft_id: int) -> Any:
    saved = backend().runtime.submit_draft(actor(), draft_id, json_body().get("note"))
    return jsonify({**saved.as_dict(), "status": "submitted"})


@bp.post("/drafts/<int:draft_id>/withdraw")
@token_or_session
def withdraw_draft(draft_id: int) -> Any:
    backend().runtime.withdraw_draft(actor(), draft_id)
    return jsonify({"id": draft_id, "status": "editing"})


@bp.post("/drafts/<int:draft_id>/approve")
@token_or_session
def approve_draft(draft_id: int) -> Any:
    return jsonify(backend().runtime.approve_draft(actor(), draft_id).as_dict()), 201


@bp.post("/drafts/<int:draft_id>/reject")
@token_or_session
def reject_draft(draft_id: int) -> Any:
    backend().runtime.reject_draft(actor(), draft_id, json_body().get("comment"))
    return jsonify({"id": draft_id, "status": "rejected"})


@bp.get("/models/log")
@token_or_session
def model_log() -> Any:
    models = _models()
    return jsonify(
        {
            "verification": models.verify_log(actor()).as_dict(),
            "entries": models.log(actor(), request.args.get("process") or None),
        }
    )


@bp.get("/improvements")
@token_required
def improvements() -> Any:
    """The register: one page of it as JSON (the filters of the register page; the total
    in `X-Total-Count`), or with `format=xlsx` every record the filters find as a
    workbook (Chinese headers; English with `lang=en`)."""
    fmt = request.args.get("format") or "json"
    if fmt == "xlsx":
        locale = "en" if request.args.get("lang") == "en" else "zh-CN"
        return register_xlsx_response(actor(), request.args, locale)
    if fmt != "json":
        raise ValidationFailed("format must be json or xlsx", {"format": ["unknown format"]})
    chosen = RegisterFilter.from_args(request.args, per_page=API_PER_PAGE)
    rows, total = backend().queries.records_page(actor(), chosen)
    response = jsonify(rows)
    response.headers["X-Total-Count"] = str(total)
    return response


@bp.get("/dashboard")
@token_required
def dashboard() -> Any:
    """The dashboard's figures (engine.queries.dashboard) as JSON."""
    return jsonify(as_json(backend().queries.dashboard(actor())))


@bp.get("/improvements/<number>/pack")
@token_required
def improvement_pack(number: str) -> Any:
    return attachments.pack_response(actor(), number)


@bp.get("/improvements/<number>/attachments/<sha256>")
@token_required
def improvement_attachment(number: str, sha256: str) -> Any:
    return attachments.download(actor(), number, sha256)


@bp.get("/metrics")
@token_required
def metrics() -> Any:
    return jsonify(backend().queries.readings(actor(), request.args.get("code")))


# ---- the metric catalogue and its history ----------------------------------------------------


def _active_arg() -> bool | None:
    status = request.args.get("status", "")
    if status not in ("", "active", "retired"):
        raise ValidationFailed("status is active or retired", {"status": ["unknown_choice"]})
    return {"active": True, "retired": False}.get(status)


@bp.get("/metrics/catalogue")
@token_required
def metric_catalogue() -> Any:
    found = backend().queries.metrics(actor(), _active_arg(), request.args.get("category") or None)
    return jsonify([m.as_dict() for m in found])


@bp.post("/metrics/catalogue")
@token_required
def create_metric() -> Any:
    body = json_body()
    code = backend().runtime.create_metric(actor(), str(body.get("code") or ""), body)
    return jsonify(backend().queries.metric(actor(), code).as_dict()), 201


@bp.put("/metrics/catalogue/<code>")
@token_required
def update_metric(code: str) -> Any:
    backend().runtime.update_metric(actor(), code, json_body())
    return jsonify(backend().queries.metric(actor(), code).as_dict())


@bp.post("/metrics/catalogue/<code>/retire")
@token_required
def retire_metric(code: str) -> Any:
    backend().runtime.retire_metric(actor(), code)
    return jsonify(backend().queries.metric(actor(), code).as_dict())


@bp.post("/metrics/catalogue/<code>/reactivate")
@token_required
def reactivate_metric(code: str) -> Any:
    backend().runtime.reactivate_metric(actor(), code)
    return jsonify(backend().queries.metric(actor(), code).as_dict())


@bp.get("/metrics/<code>/history")
@token_required
def metric_history(code: str) -> Any:
    history = backend().queries.metric_history(actor(), code)
    return jsonify(
        {
            "metric": history.metric.as_dict(),
            "readings": [
                {
                    "period": r.period,
                    "value": r.value,
                    "recorded_by": r.recorded_by,
                    "recorded_at": r.recorded_at.isoformat(),
                    "instance_id": r.instance_id,
                    "record_number": r.record_number,
                }
                for r in history.readings
            ],
            "bands": [
                {
                    "number": b.number,
                    "instance_id": b.instance_id,
                    "status": b.status,
                    "baseline": b.baseline,
                    "target": b.target,
                }
                for b in history.bands
            ],
        }
    )


@bp.post("/metrics/import")
@token_required
def import_metric_values() -> Any:
    """A CSV or xlsx file (multipart `file`), optionally for one metric (`code`): with
    `dry_run=1` the preview, else recorded (all rows or none; 422 names each wrong row)."""
    backend().policy.require_manage_metrics(actor())
    upload = request.files.get("file")
    if upload is None:
        raise ValidationFailed("send the file as multipart field 'file'", {"file": ["required"]})
    content, filename = upload.read(), upload.filename or "import.csv"
    code = (request.form.get("code") or request.args.get("code") or "").strip() or None
    if request.args.get("dry_run") in ("1", "true"):
        preview = backend().queries.preview_import(actor(), content, filename, code)
        return jsonify(preview.as_dict())
    recorded = backend().runtime.import_readings_file(actor(), content, filename, code)
    return jsonify(recorded.as_dict()), 201


@bp.errorhandler(404)
def _not_found(exc: Any) -> Any:
    raise NotFound("no such resource")
