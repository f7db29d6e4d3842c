"""The form editor's live preview: a form document, not yet saved anywhere, rendered by
the very templates the inbox renders a task's form with (templates/_form.html through
web.formdata), so that what a process owner sees beside the diagram is what the person
doing the task will get.

`POST /models/form-preview` with `{"form": {…}, "locale"?: "zh-CN" | "en"}`:

- 200 text/html: the form's title, description and fields, empty;
- 422 `{"errors": [...]}`: a form the engine could not use, by the checks the server
  lint applies to every form of a draft (engine.modeling.lint: `form-schema`,
  `form-labels`), or one beyond the bounds a draft's forms keep;
- 400 `{"errors": [...]}`: a body that is no JSON object holding a form; 413 one
  larger than a form may be;
- 403 `{"errors": [...]}`: not signed in, or neither modeling nor reading models.

Nothing of the form is run: prefills, option lists, notices and checks are read as the
engine reads them when a form is loaded, and never evaluated; fields show empty and
run-time option lists (`x-options`) without options.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request
from flask_babel import force_locale
from flask_login import current_user

from engine.errors import ValidationFailed
from engine.forms.library import form_of
from engine.forms.options import Option, resolve_schema
from engine.inputs import loads
from engine.modeling.lint import MAX_FORM_BYTES, bounded_forms, form_document_problems
from web import backend, formdata, ui

bp = Blueprint("form_preview", __name__, url_prefix="/models")

# The body is {"form": …} and a locale: the form's own bound and a little room.
MAX_BODY_BYTES = MAX_FORM_BYTES + 1024
PREVIEW_KEY = "preview"  # the form is keyed by no task yet
_BABEL_LOCALES = {"zh-CN": "zh_CN", "en": "en"}


class _NoOptions:
    """Run-time option lists come from an instance's data and the users: a preview has
    no instance, and lists no one."""

    def options(self, spec: str) -> list[Option]:
        return []


def _refuse(status: int, errors: list[str]) -> tuple[Response, int]:
    return jsonify({"errors": errors}), status


@bp.post("/form-preview")
def preview() -> Any:
    # A script asks, not a person following a link: a refusal is said in JSON, not a
    # redirect to the log-in page the script would read as the preview.
    if not current_user.is_authenticated:
        return _refuse(403, ["sign in to preview forms"])
    actor = current_user.actor
    policy = backend().policy
    if not (policy.may_model(actor) or policy.may_read_models(actor)):
        return _refuse(403, ["previewing forms is for modelers, approvers and auditors"])
    # The app's bound on a request is a whole draft's: a preview is one form.
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _refuse(413, [f"a form is at most {MAX_FORM_BYTES} bytes of JSON"])
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY_BYTES:  # sent without a length
        return _refuse(413, [f"a form is at most {MAX_FORM_BYTES} bytes of JSON"])
    try:
        body = loads(raw, "the body")
    except ValidationFailed as exc:
        return _refuse(400, [exc.message])
    document = body.get("form") if isinstance(body, dict) else None
    if not isinstance(document, dict):
        return _refuse(400, ['the body must be {"form": {…}}'])
    problems = _problems(document)
    if problems:
        return _refuse(422, problems)
    form = form_of(PREVIEW_KEY, document, backend().pack.prefills, backend().pack.checks)
    chosen = body.get("locale")
    locale = chosen if chosen in _BABEL_LOCALES else ui.form_locale()
    with force_locale(_BABEL_LOCALES[locale]):
        g.locale = _BABEL_LOCALES[locale]  # ui.pick and the labels read it
        schema = resolve_schema(form.schema, _NoOptions())
        html = render_template(
            "models/_form_preview.html",
            title=ui.pick(form.title),
            description=ui.pick(form.description),
            fields=formdata.build_fields(schema, {}, {}, locale),
            locale=locale,
        )
    return Response(html, mimetype="text/html")


def _problems(document: dict[str, Any]) -> list[str]:
    """What the server lint would find wrong with this form, were it a draft's."""
    try:
        bounded_forms({PREVIEW_KEY: document})
    except ValidationFailed as exc:
        return [exc.message]
    pack = backend().pack
    return [
        problem for _rule, problem in form_document_problems(document, pack.prefills, pack.checks)
    ]
