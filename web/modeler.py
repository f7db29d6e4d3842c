"""The modeler: a process owner edits a process's diagram and its forms in the browser
(bpmn-js, vendored under static/vendor/modeler), saves drafts and submits them for
approval. The page itself only decides who may edit and hands the script what it
needs; the script reads and writes through the JSON API (web/api.py), which checks
everything again."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf

from engine.errors import NotFound
from web import backend
from web.inputs import int_arg
from web.ui import form_locale

bp = Blueprint("modeler", __name__, url_prefix="/models")


def _strings() -> dict[str, str]:
    """The script's words (ours and bpmn-js's), in the reader's language."""
    return {
        # the page
        "Saved at {time}": _("Saved at {time}"),
        "Saving…": _("Saving…"),
        "Not saved yet": _("Not saved yet"),
        "Unsaved changes": _("Unsaved changes"),
        "Save failed: {reason}": _("Save failed: {reason}"),
        "Submitted for approval.": _("Submitted for approval."),
        "Submit failed: {reason}": _("Submit failed: {reason}"),
        "The draft has errors; fix them before submitting.": _(
            "The draft has errors; fix them before submitting."
        ),
        "Change note for the approver": _("Change note for the approver"),
        "Write a change note: the approver and the change history read it.": _(
            "Write a change note: the approver and the change history read it."
        ),
        "The diagram could not be loaded: {reason}": _("The diagram could not be loaded: {reason}"),
        "The XML could not be imported: {reason}": _("The XML could not be imported: {reason}"),
        "XML imported.": _("XML imported."),
        "No findings.": _("No findings."),
        "error": _("error"),
        "warning": _("warning"),
        "server": _("server"),
        "browser": _("browser"),
        "Checking…": _("Checking…"),
        "The check failed: {reason}": _("The check failed: {reason}"),
        "{count} errors, {warnings} warnings": _("{count} errors, {warnings} warnings"),
        "form editor unavailable": _("form editor unavailable"),
        "Select a user task to edit its form.": _("Select a user task to edit its form."),
        "No changes against version {version}.": _("No changes against version {version}."),
        "Added": _("Added"),
        "Removed": _("Removed"),
        "Changed": _("Changed"),
        "Moved or resized": _("Moved or resized"),
        "Forms changed": _("Forms changed"),
        "This draft is by {author}: saving makes a draft of your own.": _(
            "This draft is by {author}: saving makes a draft of your own."
        ),
        # the CSI group of the properties panel
        "CSI": _("CSI"),
        "Due in": _("Due in"),
        "ISO 8601 duration, e.g. P3D": _("ISO 8601 duration, e.g. P3D"),
        "Not an ISO 8601 duration (e.g. P3D, PT4H)": _("Not an ISO 8601 duration (e.g. P3D, PT4H)"),
        "Assignee expression": _("Assignee expression"),
        "A variable holding a username, e.g. process_owner": _(
            "A variable holding a username, e.g. process_owner"
        ),
        "English name": _("English name"),
        "Record status": _("Record status"),
        "(unchanged)": _("(unchanged)"),
        "not declared": _("not declared"),
        "Operation": _("Operation"),
        "(choose a service)": _("(choose a service)"),
        "not registered": _("not registered"),
        "Role": _("Role"),
        "The lane's name names the role whose inbox gets its tasks": _(
            "The lane's name names the role whose inbox gets its tasks"
        ),
        "not a role": _("not a role"),
        "(choose a role)": _("(choose a role)"),
        "Condition": _("Condition"),
        "An expression, e.g. phase == 'monitoring'": _("An expression, e.g. phase == 'monitoring'"),
        "Variables known here": _("Variables known here"),
        "Form": _("Form"),
        "This task has a form.": _("This task has a form."),
        "This task has no form yet.": _("This task has no form yet."),
        "Edit the form": _("Edit the form"),
        "Create the form": _("Create the form"),
        "none known yet": _("none known yet"),
        # bpmn-js's palette and context pad
        "Create start event": _("Create start event"),
        "Create intermediate/boundary event": _("Create intermediate/boundary event"),
        "Create end event": _("Create end event"),
        "Create gateway": _("Create gateway"),
        "Create task": _("Create task"),
        "Create data object reference": _("Create data object reference"),
        "Create data store reference": _("Create data store reference"),
        "Create expanded sub-process": _("Create expanded sub-process"),
        "Create pool/participant": _("Create pool/participant"),
        "Create group": _("Create group"),
        "Activate hand tool": _("Activate hand tool"),
        "Activate lasso tool": _("Activate lasso tool"),
        "Activate create/remove space tool": _("Activate create/remove space tool"),
        "Activate global connect tool": _("Activate global connect tool"),
        "Append task": _("Append task"),
        "Append end event": _("Append end event"),
        "Append gateway": _("Append gateway"),
        "Connect to other element": _("Connect to other element"),
        "Change element": _("Change element"),
        "Delete": _("Delete"),
        "Add lane above": _("Add lane above"),
        "Add lane below": _("Add lane below"),
        "Divide into two lanes": _("Divide into two lanes"),
        "Divide into three lanes": _("Divide into three lanes"),
        "Toggle linting overlays": _("Toggle linting overlays"),
    }


@bp.get("/<process_id>/edit")
@login_required
def edit(process_id: str) -> Any:
    actor = current_user.actor
    policy = backend().policy
    policy.require_model(actor, "editing a process model")
    policy.require_writer(actor)
    found = [p for p in backend().queries.models.overview(actor) if p.process_id == process_id]
    if not found or not found[0].versions:
        raise NotFound(f"no deployed process {process_id!r}")
    process = found[0]
    draft_id = int_arg("draft", lowest=1)
    draft = None
    if draft_id is not None:
        draft, _content = backend().queries.models.draft(actor, draft_id)
        if draft.process_id != process_id:
            raise NotFound(f"no draft {draft_id} of {process_id!r}")
    others = [d for d in process.drafts if d.author != actor.username and d.id != draft_id]
    # Opened afresh while a draft of one's own is open: offer it, rather than a second one.
    mine = [d for d in process.drafts if d.author == actor.username and d.id != draft_id]
    latest = process.versions[-1]
    setup = {
        "processId": process_id,
        "draftId": draft.id if draft else None,
        "draftAuthor": draft.author if draft else None,
        "draftStatus": draft.status if draft else None,
        "latestVersion": latest.version,
        "user": actor.username,
        "locale": form_locale(),
        "csrfToken": generate_csrf(),
        "urls": {
            "version": url_for("api.model_version", process_id=process_id, version=latest.version),
            "context": url_for("api.model_context", process_id=process_id),
            "lint": url_for("api.lint_model", process_id=process_id),
            "drafts": url_for("api.create_draft", process_id=process_id),
            "draftApi": url_for("api.get_draft", draft_id=0).removesuffix("0"),
            "review": url_for("models.draft", draft_id=0).removesuffix("0"),
            "edit": url_for("modeler.edit", process_id=process_id),
            "formPreview": url_for("form_preview.preview"),
        },
        "strings": _strings(),
    }
    return render_template(
        "models/edit.html",
        process=process,
        latest=latest,
        draft=draft,
        others=others,
        mine=mine if draft is None else [],
        setup=setup,
    )
