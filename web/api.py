"""JSON API under /api/v1 (DESIGN section 7). Bearer tokens, no cookies, so no CSRF."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from engine import history, queries, records, replay, specs
from engine.errors import Forbidden, NotFound, ValidationFailed
from engine.roles import ADMIN, AUDITOR
from engine.runtime import Actor
from engine.store import ImprovementRecord, MetricValue
from web import services
from web.auth import SignedInUser, Unauthorized, check_password, issue_token, user_from_token

bp = Blueprint("api", __name__, url_prefix="/api/v1")


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


def actor() -> Actor:
    user: SignedInUser = g.api_user
    return user.actor


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None:
        if request.get_data(cache=True).strip():
            raise ValidationFailed("the body is not valid JSON", {"": ["not JSON"]})
        body = {}
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", {"": ["not an object"]})
    return body


@bp.post("/auth/token")
def token() -> Any:
    body = request.get_json(silent=True) or request.form
    user = check_password(str(body.get("username", "")), str(body.get("password", "")))
    if user is None:
        raise Unauthorized("wrong username or password")
    return jsonify({"token": issue_token(user), "token_type": "Bearer", "username": user.username})


@bp.get("/tasks")
@token_required
def list_tasks() -> Any:
    instance = request.args.get("instance", type=int)
    with services().db.sessions() as session:
        rows = queries.inbox(session, actor(), instance)
        return jsonify([queries.task_dict(t) for t in rows])


@bp.get("/tasks/<task_id>")
@token_required
def get_task(task_id: str) -> Any:
    view = services().runtime.task_view(task_id)
    who = actor()
    if not (
        services().runtime.may_work_on(view.task, who) or AUDITOR in who.roles or ADMIN in who.roles
    ):
        raise Forbidden("this task belongs to another role or person")
    return jsonify(
        {
            **queries.task_dict(view.task),
            "title": view.form.title,
            "description": view.form.description,
            "schema": view.schema,
            "data": view.data,
            "context": view.context,
            "record_number": view.record_number,
        }
    )


@bp.post("/tasks/<task_id>/claim")
@token_required
def claim(task_id: str) -> Any:
    result = services().runtime.claim_task(task_id, actor())
    return jsonify({"ok": True, "instance_id": result.instance_id, "claimed_by": actor().username})


@bp.post("/tasks/<task_id>/unclaim")
@token_required
def unclaim(task_id: str) -> Any:
    result = services().runtime.unclaim_task(task_id, actor())
    return jsonify({"ok": True, "instance_id": result.instance_id})


@bp.post("/tasks/<task_id>/complete")
@token_required
def complete(task_id: str) -> Any:
    body = _json_body()
    data = body.get("data", body) if isinstance(body.get("data"), dict) else body
    result = services().runtime.complete_task(task_id, actor(), data)
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
    body = _json_body()
    process = body.get("process", records.IMPROVEMENT_PROCESS)
    data = body.get("data") or {}
    result = services().runtime.start_instance(actor(), process, data)
    return jsonify(
        {"id": result.instance_id, "status": result.status, "open_tasks": result.open_tasks}
    ), 201


@bp.get("/instances/<int:instance_id>")
@token_required
def get_instance(instance_id: int) -> Any:
    with services().db.sessions() as session:
        view = queries.instance_view(session, instance_id, with_events=False)
        return jsonify(queries.instance_dict(view))


@bp.post("/instances/<int:instance_id>/migrate")
@token_required
def migrate_instance(instance_id: int) -> Any:
    body = _json_body()
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise ValidationFailed("version must be a number", {"version": ["not an integer"]})
    result = services().runtime.migrate_instance(instance_id, actor(), version)
    return jsonify(
        {"id": result.instance_id, "status": result.status, "open_tasks": result.open_tasks}
    )


@bp.get("/instances/<int:instance_id>/history")
@token_required
def instance_history(instance_id: int) -> Any:
    with services().db.snapshot() as session:
        return jsonify(queries.event_dicts(session, instance_id))


@bp.get("/instances/<int:instance_id>/verify")
@token_required
def verify(instance_id: int) -> Any:
    with services().db.snapshot() as session:
        queries.instance_view(session, instance_id, with_events=False)
        return jsonify(history.verify(session, instance_id).as_dict())


@bp.get("/instances/<int:instance_id>/replay")
@token_required
def replay_instance(instance_id: int) -> Any:
    step = request.args.get("step", type=int)
    with services().db.snapshot() as session:
        return jsonify(replay.replay(session, instance_id, step).as_dict())


@bp.post("/models")
@token_required
def deploy_model() -> Any:
    upload = request.files.get("file")
    if upload is not None:
        xml, filename = upload.read(), upload.filename or "diagram.bpmn"
    else:
        xml, filename = request.get_data(), request.args.get("filename", "diagram.bpmn")
    deployed = services().runtime.deploy(actor(), xml, filename)
    body = {
        "created": deployed.created,
        "definitions": [specs.describe(d) for d in deployed.definitions],
    }
    # 201 for a new version; the same diagram again changes nothing: 200.
    return jsonify(body), 201 if deployed.created else 200


@bp.get("/improvements")
@token_required
def improvements() -> Any:
    with services().db.sessions() as session:
        rows = session.scalars(
            select(ImprovementRecord)
            .options(joinedload(ImprovementRecord.instance))
            .order_by(ImprovementRecord.id.desc())
        )
        return jsonify([records.describe(r) for r in rows.unique()])


@bp.get("/metrics")
@token_required
def metrics() -> Any:
    code = request.args.get("code")
    with services().db.sessions() as session:
        query = select(MetricValue).order_by(MetricValue.recorded_at, MetricValue.id)
        if code:
            query = query.where(MetricValue.code == code)
        return jsonify(
            [
                {
                    "code": v.code,
                    "value": v.value,
                    "period": v.period,
                    "instance_id": v.instance_id,
                    "recorded_by": v.recorded_by,
                    "recorded_at": v.recorded_at.isoformat(),
                }
                for v in session.scalars(query)
            ]
        )


@bp.errorhandler(404)
def _not_found(exc: Any) -> Any:
    raise NotFound("no such resource")
