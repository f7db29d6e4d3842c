"""What the pages share: the reader's locale, labels, value formatting and the Jinja
filters. Labels come from where the procedure declares them: roles from the pack,
process, element and record-status names from the diagrams, variable titles and
enum labels from the forms and variables.json (the data dictionary). Only the
engine's own words (instance and task states, event kinds) are translated here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from flask import Flask, current_app, g
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user

from engine.commands.deploy import ADMIN_DEPLOYMENT, PACK_DEPLOYMENT
from engine.queries.views import TaskRow
from engine.workflow.model import Element, ProcessModel

# -- locale -------------------------------------------------------------------------------------


def locale() -> str:
    return str(g.get("locale") or current_app.config.get("CSI_LOCALE", "zh_CN"))


def is_zh() -> bool:
    return locale().startswith("zh")


def form_locale() -> str:
    """The key form files use for the current locale: "zh-CN" or "en"."""
    return "zh-CN" if is_zh() else "en"


def pick(texts: Any, fallback: str = "") -> str:
    """The current locale's entry of a {"zh-CN": …, "en": …} mapping."""
    if isinstance(texts, str):
        return texts
    if not isinstance(texts, Mapping):
        return fallback
    key = form_locale()
    return str(texts.get(key) or texts.get("zh-CN") or texts.get("en") or fallback)


def _backend() -> Any:
    from web import backend

    return backend()


# -- the data dictionary ----------------------------------------------------------------------


def schema_of(key: str) -> dict[str, Any]:
    """The declared schema of a process variable ({} when nothing declares it)."""
    return dict(_backend().queries.dictionary.schema(key))


def items_of(schema: Mapping[str, Any]) -> dict[str, Any]:
    items = schema.get("items")
    return dict(items) if isinstance(items, Mapping) else {}


def column_schema(schema: Mapping[str, Any], column: str) -> dict[str, Any]:
    """The schema of one column of a list of objects (or one key of an object)."""
    target = items_of(schema) or schema
    found = (target.get("properties") or {}).get(column)
    return dict(found) if isinstance(found, Mapping) else {}


def title_of(schema: Mapping[str, Any], fallback: str) -> str:
    if form_locale() == "en":
        return str(schema.get("x-title-en") or schema.get("title") or fallback)
    return str(schema.get("title") or schema.get("x-title-en") or fallback)


def label(key: str, schema: Mapping[str, Any] | None = None) -> str:
    """The label of a variable (or of a column, given its schema)."""
    return title_of(schema if schema is not None else schema_of(key), key)


def enum_label(key: str, value: Any, schema: Mapping[str, Any] | None = None) -> str:
    """The label of an enum value of a variable (or column), else the value itself."""
    if value is None:
        return ""
    schema = schema if schema is not None else schema_of(key)
    target = items_of(schema) if schema.get("type") == "array" else schema
    values = list(target.get("enum") or [])
    titles = target.get("x-enum-titles") or {}
    labels = titles.get(form_locale()) or titles.get("zh-CN") or []
    if value in values and values.index(value) < len(labels):
        return str(labels[values.index(value)])
    return str(value)


def columns(rows: Any, schema: Mapping[str, Any]) -> list[str]:
    """The columns of a list of objects: those its schema declares that a row fills, in
    declared order (hidden ones left out), then any others the rows hold."""
    if not isinstance(rows, list):
        return []
    dicts = [r for r in rows if isinstance(r, dict)]
    declared = items_of(schema).get("properties") or {}
    shown = [
        c
        for c, s in declared.items()
        if not (isinstance(s, Mapping) and s.get("x-hidden"))
        and any(r.get(c) not in (None, "", []) for r in dicts)
    ]
    extra: list[str] = []
    for row in dicts:
        for key, value in row.items():
            if key not in declared and key not in extra and value not in (None, "", []):
                extra.append(key)
    return shown + extra


def lookup(spec: Mapping[str, Any], value: Any, data: Mapping[str, Any]) -> str:
    """`x-lookup`: the other columns of the row of `data[variable]` whose key is `value`."""
    rows = data.get(str(spec.get("variable"))) or []
    key = spec.get("key")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, Mapping) and row.get(key) == value:
            return " ".join(str(row.get(c)) for c in spec.get("show") or [] if row.get(c))
    return ""


def data_order(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An instance's data as its page lists it: the declared order first, then the rest;
    working variables (x-internal) and empty values left out."""
    dictionary = _backend().queries.dictionary
    shown = {k: data[k] for k in dictionary.order if k in data and not is_empty(data[k])}
    other = {
        k: v
        for k, v in data.items()
        if k not in shown
        and not dictionary.is_internal(k)
        and not k.startswith("_")
        and not is_empty(v)
    }
    return shown, other


# -- what the pack and diagrams name ----------------------------------------------------------


def _process_models() -> dict[str, ProcessModel]:
    if "csi_process_models" not in g:
        g.csi_process_models = _backend().queries.process_models()
    models: dict[str, ProcessModel] = g.csi_process_models
    return models


def process_label(process_id: str | None) -> str:
    model = _process_models().get(process_id or "")
    return model.label(locale()) if model is not None else (process_id or "")


def record_status_label(status: str | None) -> str:
    for model in _process_models().values():
        labels = model.record_statuses.get(status or "")
        if labels:
            return pick(labels, status or "")
    return status or ""


def record_statuses() -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for model in _process_models().values():
        for key, labels in model.record_statuses.items():
            found.setdefault(key, pick(labels, key))
    return list(found.items())


def role_label(role: str | None) -> str:
    return _backend().pack.roles.label(role, locale())


def _form_title(key: str) -> str | None:
    forms = _backend().runtime.forms
    if not forms.has(key):
        return None
    try:
        return pick(forms.get(key).title) or None
    except Exception:  # a broken form must not break every page
        current_app.logger.exception("cannot read form %s", key)
        return None


def element_label(element_id: str, element: Element | None = None) -> str:
    """An element's name in the reader's language: the diagram's names, else (for a
    user task in English) its form's title."""
    if element is not None:
        if is_zh() and element.name:
            return element.name
        if not is_zh() and element.name_en:
            return element.name_en
    if not is_zh():
        return _form_title(element_id) or (element.label("en") if element else element_id)
    return element_id


def task_title(task: TaskRow) -> str:
    """A task's name: the diagram's (zh) name, or in English the form's title."""
    if is_zh():
        return task.name
    return _form_title(task.bpmn_id) or task.name


def is_overdue(task: TaskRow) -> bool:
    return task.overdue


# -- the engine's own words ------------------------------------------------------------------------


def instance_status_label(status: str | None) -> str:
    return {
        "running": _("Running"),
        "completed": _("Completed"),
        "cancelled": _("Cancelled"),
        "failed": _("Failed"),
    }.get(status or "", status or "")


def task_status_label(status: str | None) -> str:
    return {
        "open": _("Pending"),
        "completed": _("Completed"),
        "cancelled": _("Cancelled"),
    }.get(status or "", status or "")


def event_label(kind: str) -> str:
    return {
        "instance_started": _("Instance started"),
        "task_claimed": _("Task claimed"),
        "task_unclaimed": _("Task released"),
        "task_completed": _("Task completed"),
        "service_completed": _("Service completed"),
        "timer_fired": _("Timer fired"),
        "instance_migrated": _("Instance migrated"),
        "instance_completed": _("Instance completed"),
        "state_repaired": _("State rebuilt from the history"),
    }.get(kind, kind)


def draft_status_label(status: str) -> str:
    return {
        "editing": _("Being edited"),
        "submitted": _("Awaiting approval"),
        "rejected": _("Rejected"),
        "approved": _("Approved"),
        "withdrawn": _("Withdrawn"),
    }.get(status, status)


def change_note(note: str | None) -> str:
    """A version's change note; the notes the system writes itself in the reader's language."""
    return {
        ADMIN_DEPLOYMENT: _("administrator deployment"),
        PACK_DEPLOYMENT: _("deployed with the application"),
    }.get(note or "", note or "")


def model_event_label(kind: str) -> str:
    return {
        "draft_submitted": _("Submitted for approval"),
        "draft_withdrawn": _("Submission withdrawn"),
        "draft_approved": _("Approved"),
        "draft_rejected": _("Rejected"),
        "version_deployed": _("Version deployed"),
    }.get(kind, kind)


# -- the current user ---------------------------------------------------------------------------


def actor() -> Any:
    return current_user.actor


def startable() -> list[ProcessModel]:
    """The processes the current user may start (once per request)."""
    if not current_user.is_authenticated:
        return []
    if "csi_startable" not in g:
        g.csi_startable = _backend().queries.startable(actor(), _process_models())
    found: list[ProcessModel] = g.csi_startable
    return found


def can_start() -> bool:
    return bool(startable())


def can_audit() -> bool:
    return bool(current_user.is_authenticated and _backend().policy.may_audit(actor()))


def can_read_all() -> bool:
    return bool(current_user.is_authenticated and _backend().policy.may_read_all(actor()))


def can_read_models() -> bool:
    return bool(current_user.is_authenticated and _backend().policy.may_read_models(actor()))


def can_administer() -> bool:
    return bool(current_user.is_authenticated and _backend().policy.may_administer(actor()))


# -- formatting ----------------------------------------------------------------------------------


def fmt_number(value: Any, digits: int = 2) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        rounded = round(float(value), digits)
        if rounded == int(rounded):
            return str(int(rounded))
        return f"{rounded:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)


def fmt_datetime(value: Any) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return format_datetime(value, "yyyy-MM-dd HH:mm")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def fmt_value(key: str, value: Any, schema: Mapping[str, Any] | None = None) -> str:
    """A scalar for reading: enum labels, yes/no, numbers, lists joined."""
    if value is None or value == "":
        return "—"
    schema = schema if schema is not None else schema_of(key)
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, int | float):
        return fmt_number(value)
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(enum_label(key, v, schema) for v in value)
    return enum_label(key, value, schema)


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def is_scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(is_scalar(v) for v in value)


def is_dict_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def install(app: Flask) -> None:
    app.add_template_filter(fmt_number, "num")
    app.add_template_filter(fmt_datetime, "dt")
    for function in (
        fmt_value,
        label,
        enum_label,
        columns,
        column_schema,
        items_of,
        schema_of,
        lookup,
        is_scalar,
        is_scalar_list,
        is_dict_list,
        is_empty,
        role_label,
        task_title,
        element_label,
        is_overdue,
        instance_status_label,
        record_status_label,
        task_status_label,
        event_label,
        process_label,
        pick,
        can_read_all,
        can_audit,
        can_administer,
        can_read_models,
        draft_status_label,
        model_event_label,
        change_note,
    ):
        app.add_template_global(function)

    @app.context_processor
    def _ui_globals() -> dict[str, Any]:
        return {
            "can_start": can_start(),
            "html_lang": "zh-CN" if is_zh() else "en",
            "form_locale": form_locale(),
            "main_process": _backend().pack.main_process,
            "pack_title": _backend().pack.title,
            "pack_document": _backend().pack.manifest.get("document"),
        }
