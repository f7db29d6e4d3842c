"""Improvements: the list of instances, starting one, and one instance with its diagram."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from engine.audit import exports
from engine.errors import Forbidden, NotFound
from web import backend, ui
from web.inputs import int_arg

bp = Blueprint("instances", __name__, url_prefix="/instances")

STATUSES = ("running", "completed")


@bp.get("")
@login_required
def index() -> Any:
    status = request.args.get("status")
    status = status if status in STATUSES else None
    rows = backend().queries.instance_list(current_user.actor, status)
    return render_template("instances.html", rows=rows, status=status)


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new() -> Any:
    processes = ui.startable()
    if not processes:
        raise Forbidden(_("None of your roles may start a process."))
    if request.method == "GET":
        return render_template("start.html", processes=processes)
    wanted = request.form.get("process") or backend().pack.main_process
    if wanted not in {p.process_id for p in processes}:
        raise NotFound(f"no process {wanted} to start")
    actor = current_user.actor
    result = backend().runtime.start_instance(actor, wanted)
    for task_id in result.open_tasks:
        task = backend().queries.open_task(task_id)
        if task is not None and backend().policy.may_work_on(actor, task):
            return redirect(url_for("tasks.view", task_id=task.id))
    return redirect(url_for("instances.show", instance_id=result.instance_id))


@bp.get("/<int:instance_id>")
@login_required
def show(instance_id: int) -> Any:
    queries, policy, actor = backend().queries, backend().policy, current_user.actor
    view = queries.instance(actor, instance_id)
    instance = view.instance
    newest = queries.latest_version(instance.process_id) or view.definition.version
    # A modeler may move a running instance onto a newer version of its diagram.
    migrate_to = (
        newest
        if instance.status == "running"
        and newest > view.definition.version
        and policy.may_model(actor)
        else None
    )
    elements = queries.elements_of(instance)
    main_data, other_data = ui.data_order(dict(instance.data or {}))
    active = [(e, ui.element_label(e, elements.get(e))) for e in instance.active_elements or []]
    workable = {t.id for t in view.open_tasks if policy.may_work_on(actor, t)}
    attached = queries.evidence.attachments_of(actor, view.record.number) if view.record else []
    return render_template(
        "instance.html",
        view=view,
        instance=instance,
        record=view.record,
        active=active,
        workable=workable,
        main_data=main_data,
        other_data=other_data,
        events=view.events,
        elements=elements,
        migrate_to=migrate_to,
        attached=attached,
    )


@bp.post("/<int:instance_id>/migrate")
@login_required
def migrate(instance_id: int) -> Any:
    version = int_arg("version", request.form)
    backend().runtime.migrate_instance(instance_id, current_user.actor, version)
    now_on = backend().queries.instance(current_user.actor, instance_id, with_events=False)
    flash(
        _("The instance now runs on version %(version)s.", version=now_on.definition.version),
        "success",
    )
    return redirect(url_for("instances.show", instance_id=instance_id))


@bp.get("/<int:instance_id>/diagram.bpmn")
@login_required
def diagram(instance_id: int) -> Any:
    """The instance's diagram; `?definition=<id>` another version of its process (the
    audit console shows each step on the version the instance ran on then)."""
    xml = backend().queries.diagram(current_user.actor, instance_id, int_arg("definition"))
    return Response(
        xml, mimetype="application/xml", headers={"Cache-Control": "private, max-age=300"}
    )


def history_download(instance_id: int, fmt: str) -> Response:
    """An instance's history (every event with its hashes) as a file, for whoever may
    read the instance: its participants, those who read every instance, auditors."""
    queries = backend().queries
    rows = queries.history(current_user.actor, instance_id)
    number = queries.history_file_name(current_user.actor, instance_id)
    text = exports.render(rows, fmt)
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


@bp.get("/<int:instance_id>/history.json")
@login_required
def history_json(instance_id: int) -> Response:
    return history_download(instance_id, "json")


@bp.get("/<int:instance_id>/history.csv")
@login_required
def history_csv(instance_id: int) -> Response:
    return history_download(instance_id, "csv")
