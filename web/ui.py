"""What the pages share: locale keys, labels of data keys and enum values, element
names of a diagram, and the Jinja filters. Installed once per app by `install`."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any

from flask import Flask, current_app, g
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user

from engine import forms, specs
from engine.errors import DomainError
from engine.roles import ADMIN, ALL_ROLES, AUDITOR
from engine.store import HumanTask, Instance, ProcessDefinition

STARTER_ROLES = ("ImprovementOwner", ADMIN)


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
    if not isinstance(texts, dict):
        return fallback
    key = form_locale()
    return str(texts.get(key) or texts.get("zh-CN") or texts.get("en") or fallback)


# -- forms catalogue (titles and enum labels of every field of every form) ----------------------

_catalogue_lock = threading.Lock()
_catalogue: dict[str, Any] | None = None


def _forms_dir() -> Any:
    from web import services

    return services().runtime.forms_dir


def _catalogue_data() -> dict[str, Any]:
    global _catalogue
    with _catalogue_lock:
        if _catalogue is not None:
            return _catalogue
    titles: dict[str, dict[str, str]] = {}
    enums: dict[str, dict[str, dict[str, str]]] = {}
    form_titles: dict[str, dict[str, str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, prop in (node.get("properties") or {}).items():
                if not isinstance(prop, dict):
                    continue
                if "title" in prop:
                    titles.setdefault(
                        name,
                        {"zh-CN": prop["title"], "en": prop.get("x-title-en") or prop["title"]},
                    )
                target = prop.get("items") if prop.get("type") == "array" else prop
                if isinstance(target, dict) and "enum" in target and "x-enum-titles" in target:
                    labels = target["x-enum-titles"]
                    for i, value in enumerate(target["enum"]):
                        entry = enums.setdefault(name, {}).setdefault(str(value), {})
                        for loc in ("zh-CN", "en"):
                            if loc in labels and i < len(labels[loc]):
                                entry.setdefault(loc, labels[loc][i])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted(_forms_dir().glob("*.json")):
        try:
            form = forms.load_form(path.stem, _forms_dir())
        except Exception:  # a broken form file must not break every page
            current_app.logger.exception("cannot read form %s", path)
            continue
        form_titles[form.key] = dict(form.title)
        walk(form.schema)
    data = {"titles": titles, "enums": enums, "forms": form_titles}
    with _catalogue_lock:
        _catalogue = data
    return data


def form_title(key: str) -> str | None:
    title = _catalogue_data()["forms"].get(key)
    return pick(title) if title else None


# -- labels -----------------------------------------------------------------------------------


def _data_labels() -> dict[str, str]:
    return {
        "source": _("Source"),
        "reference": _("Reference"),
        "description": _("Description"),
        "related_services": _("Related services"),
        "process_owners": _("Process owners"),
        "process_owner": _("Process owner"),
        "metric_owner": _("Metric owner"),
        "proposals": _("Proposed metrics"),
        "metrics": _("Metrics"),
        "targets": _("Baselines and targets"),
        "collected": _("Collected data"),
        "gaps": _("Gap analysis"),
        "impact": _("Impact"),
        "comments": _("Comments"),
        "problem": _("Problem"),
        "root_cause": _("Root cause"),
        "improvement_type": _("Improvement type"),
        "measures": _("Improvement measures"),
        "measure": _("Measure"),
        "decision": _("Decision"),
        "comment": _("Comment"),
        "outcome": _("Outcome"),
        "recheck_after": _("Re-check after"),
        "note": _("Note"),
        "notes": _("Notes"),
        "verified_on": _("Verified on"),
        "method": _("Method"),
        "evidence": _("Evidence"),
        "result": _("Result"),
        "summary": _("Summary"),
        "carried_over": _("Carried-over items"),
        "next_cycle": _("Next cycle"),
        "rfc_number": _("RFC number"),
        "change_outcome": _("Change outcome"),
        "type": _("Change type"),
        "risk": _("Risk"),
        "implementation_plan": _("Implementation plan"),
        "rollback_plan": _("Rollback plan"),
        "rollback": _("Rollback"),
        "period": _("Period"),
        "values": _("Measured values"),
        "report": _("Data report"),
        "suggestions": _("Improvement suggestions"),
        "submitted_by": _("Submitted by"),
        # columns
        "metric": _("Metric"),
        "code": _("Code"),
        "name": _("Name"),
        "category": _("Category"),
        "unit": _("Unit"),
        "direction": _("Direction"),
        "owner": _("Owner"),
        "baseline": _("Baseline"),
        "target": _("Target"),
        "current": _("Current"),
        "gap": _("Gap"),
        "progress_pct": _("Progress") + " %",
        "status": _("Status"),
        "trend": _("Trend"),
        "priority": _("Priority"),
        "title": _("Measure"),
        "responsible": _("Responsible"),
        "due_date": _("Due date"),
        "metric_codes": _("Metrics addressed"),
        "expected_effect": _("Expected effect"),
        "resources": _("Resources"),
        "value": _("Value"),
    }


def label(key: str) -> str:
    """Label of a data key: our own words first, then the forms' titles, then the key."""
    known = _data_labels().get(key)
    if known:
        return known
    title = _catalogue_data()["titles"].get(key)
    return pick(title) if title else key


def _value_labels() -> dict[str, dict[str, str]]:
    return {
        "status": {
            "achieved": _("Achieved"),
            "improving": _("Improving"),
            "flat": _("Flat"),
            "regressing": _("Regressing"),
        },
        "change_outcome": {
            "implemented": _("Implemented"),
            "rejected": _("Rejected"),
            "failed": _("Failed"),
        },
    }


def enum_label(key: str, value: Any) -> str:
    """Label of an enum value of data key `key` (e.g. source, decision), else the value."""
    if value is None:
        return ""
    ours = _value_labels().get(key, {}).get(str(value))
    if ours:
        return ours
    titles = _catalogue_data()["enums"].get(key, {}).get(str(value))
    return pick(titles, str(value)) if titles else str(value)


def has_enum(key: str) -> bool:
    return key in _value_labels() or key in _catalogue_data()["enums"]


def instance_status_label(status: str | None) -> str:
    return {
        "running": _("Running"),
        "completed": _("Completed"),
        "cancelled": _("Cancelled"),
        "failed": _("Failed"),
    }.get(status or "", status or "")


def record_status_label(status: str | None) -> str:
    return {
        "registered": _("Registered"),
        "defining_metrics": _("Defining metrics"),
        "collecting_data": _("Collecting data"),
        "analysing": _("Analysing"),
        "planning": _("Planning"),
        "in_review": _("In review"),
        "implementing": _("Implementing"),
        "rebaselining": _("Re-baselining"),
        "monitoring": _("Monitoring"),
        "verifying": _("Verifying"),
        "closing": _("Closing"),
        "closed": _("Closed"),
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
    }.get(kind, kind)


def role_label(role: str | None) -> str:
    if not role:
        return ""
    known = ALL_ROLES.get(role)
    if known is None:
        return role
    return known.zh if is_zh() else known.en


def process_label(process_id: str | None) -> str:
    return {
        "service_improvement": _("Service improvement"),
        "change_management": _("Change management"),
    }.get(process_id or "", process_id or "")


# -- elements and tasks ------------------------------------------------------------------------

# English names of diagram elements that have no form (user tasks take their form's title).
_EN_ELEMENTS = {
    "start": "Start improvement",
    "open_analysis": "Enter analysis phase",
    "gw_collect": "Data collection",
    "prepare_collection": "Prepare data collection",
    "compute_gaps": "Compute gaps",
    "gw_phase": "Analysis or monitoring?",
    "gw_plan": "Improvement plan",
    "gw_review": "Review result?",
    "prepare_changes": "Prepare changes",
    "implement_measures": "Implement measures (change management)",
    "apply_change_outcomes": "Write back change outcomes",
    "open_monitoring": "Enter monitoring phase",
    "gw_monitor": "Improvement effective?",
    "wait_recheck": "Wait for re-check",
    "end": "Improvement completed",
    "assign_rfc": "Register RFC number",
    "gw_type": "Change type?",
    "gw_cab": "CAB decision?",
    "mark_rejected": "Mark as rejected",
    "mark_result": "Record result",
    "gw_done": "Change done",
    "report_outcome": "Report change outcome",
}

_names_lock = threading.Lock()
_element_names: dict[tuple[int, str], dict[str, str]] = {}


def element_names(definition: ProcessDefinition) -> dict[str, str]:
    """Element id -> name (as written in the diagram, zh) of one deployed definition."""
    key = (definition.id, definition.content_hash)
    with _names_lock:
        hit = _element_names.get(key)
    if hit is not None:
        return hit
    names: dict[str, str] = {}
    try:
        tree = specs.safe_tree(
            definition.bpmn_xml.encode("utf-8"), definition.filename or "diagram.bpmn"
        )
        for node in tree.iter():
            element_id, name = node.get("id"), node.get("name")
            if (
                element_id
                and name
                and not str(node.tag).endswith(("}property", "}lane", "}participant"))
            ):
                names.setdefault(element_id, name)
    except DomainError:
        names = {}
    with _names_lock:
        _element_names[key] = names
    return names


def instance_element_names(session: Any, instance: Instance) -> dict[str, str]:
    """Element names of an instance's pinned definition and of the processes it calls
    (change management's elements appear in its tasks and history too)."""
    names = dict(element_names(instance.definition))
    for definition_id in (instance.called_definitions or {}).values():
        called = session.get(ProcessDefinition, definition_id)
        if called is not None:
            for element, name in element_names(called).items():
                names.setdefault(element, name)
    return names


def element_label(element_id: str, zh_name: str | None = None) -> str:
    if is_zh():
        return zh_name or form_title(element_id) or element_id
    return form_title(element_id) or _EN_ELEMENTS.get(element_id) or zh_name or element_id


def task_title(task: HumanTask) -> str:
    """A task's name: the diagram's (zh) name, or in English the form's title."""
    if is_zh():
        return task.name
    return form_title(task.bpmn_id) or _EN_ELEMENTS.get(task.bpmn_id) or task.name


def is_overdue(task: HumanTask) -> bool:
    due = task.due_at
    if due is None or task.status != "open":
        return False
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return due < datetime.now(UTC)


# -- current user --------------------------------------------------------------------------------


def can_start() -> bool:
    return bool(
        current_user.is_authenticated and any(current_user.has_role(r) for r in STARTER_ROLES)
    )


def can_read_all() -> bool:
    return bool(
        current_user.is_authenticated
        and (current_user.has_role(AUDITOR) or current_user.has_role(ADMIN))
    )


# -- filters -------------------------------------------------------------------------------------


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


def fmt_value(key: str, value: Any) -> str:
    """A scalar for reading: enum labels, yes/no, numbers, lists joined."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, int | float):
        return fmt_number(value)
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(enum_label(key, v) if has_enum(key) else str(v) for v in value)
    if has_enum(key):
        return enum_label(key, value)
    return str(value)


def columns(rows: Any, candidates: list[str]) -> list[str]:
    """The candidate columns that at least one row fills, in order, then any others."""
    if not isinstance(rows, list):
        return []
    dicts = [r for r in rows if isinstance(r, dict)]
    present = [c for c in candidates if any(r.get(c) not in (None, "", []) for r in dicts)]
    extra: list[str] = []
    for row in dicts:
        for key in row:
            if key not in candidates and key not in extra and row.get(key) not in (None, "", []):
                extra.append(key)
    return present + extra


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def is_scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(is_scalar(v) for v in value)


def is_dict_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


# Instance data shown on the instance page, in this order; the rest goes under "other".
INSTANCE_DATA_KEYS = (
    "source",
    "reference",
    "description",
    "related_services",
    "process_owners",
    "metrics",
    "targets",
    "gaps",
    "impact",
    "comments",
    "problem",
    "root_cause",
    "improvement_type",
    "measures",
    "decision",
    "comment",
    "outcome",
    "recheck_after",
    "note",
    "verified_on",
    "method",
    "evidence",
    "result",
    "summary",
    "carried_over",
    "next_cycle",
)
# Working variables of the diagram: not worth a reader's attention.
INTERNAL_KEYS = {
    "phase",
    "metric_owners",
    "proposal",
    "owner_report",
    "change_result",
    "change_outcomes",
}


def split_instance_data(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    main = {k: data[k] for k in INSTANCE_DATA_KEYS if k in data and not is_empty(data[k])}
    other = {
        k: v
        for k, v in data.items()
        if k not in main and k not in INTERNAL_KEYS and not k.startswith("_") and not is_empty(v)
    }
    return main, other


def install(app: Flask) -> None:
    if app.extensions.get("csi_ui"):
        return
    app.extensions["csi_ui"] = True
    app.add_template_filter(fmt_number, "num")
    app.add_template_filter(fmt_datetime, "dt")
    app.add_template_global(fmt_value)
    app.add_template_global(label)
    app.add_template_global(enum_label)
    app.add_template_global(columns)
    app.add_template_global(is_scalar)
    app.add_template_global(is_scalar_list)
    app.add_template_global(is_dict_list)
    app.add_template_global(is_empty)
    app.add_template_global(role_label)
    app.add_template_global(task_title)
    app.add_template_global(element_label)
    app.add_template_global(is_overdue)
    app.add_template_global(instance_status_label)
    app.add_template_global(record_status_label)
    app.add_template_global(task_status_label)
    app.add_template_global(event_label)
    app.add_template_global(process_label)
    app.add_template_global(pick)
    app.add_template_global(can_read_all)

    @app.context_processor
    def _ui_globals() -> dict[str, Any]:
        return {
            "can_start": can_start(),
            "html_lang": "zh-CN" if is_zh() else "en",
            "form_locale": form_locale(),
        }
