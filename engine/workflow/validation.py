"""Validation before deploy: refuse what the runtime could not run safely.

A missing start event, a lane that is no role of the pack, a service the pack does
not register, an expression outside the whitelist, a user task without a form, a
literal duration, date or loop cardinality out of the engine's bounds, a cycle timer:
each is reported with the id of the element it concerns.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable, Container
from dataclasses import dataclass, field

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.spiff.parser.process import BpmnValidator

from engine.errors import UnsafeExpression, ValidationFailed
from engine.workflow import bounds, durations, expressions
from engine.workflow.model import check_models, read_models
from engine.workflow.safe_xml import BPMN_NS, NS

_validator_lock = threading.Lock()
_validator: BpmnValidator | None = None


def _xsd_validator() -> BpmnValidator:
    # Loading the BPMN XSD takes ~100 ms: once per process, on first use.
    global _validator
    with _validator_lock:
        if _validator is None:
            _validator = BpmnValidator()
        return _validator


@dataclass(frozen=True)
class DiagramRules:
    """What a diagram may name, as the pack it is deployed into defines it: roles for
    its lanes, registered services, and (when checked) a form for each user task."""

    role_for_lane: Callable[[str | None], str | None]
    services: Container[str]
    has_form: Callable[[str], bool] | None = None


@dataclass
class DiagramReport:
    """What one BPMN file holds, once it passed validation."""

    processes: dict[str, str]  # process id -> name
    called: dict[str, list[str]]  # process id -> called process ids
    user_tasks: dict[str, list[str]] = field(default_factory=dict)  # process id -> task ids


def _element_errors(errors: dict[str, list[str]], element_id: str, message: str) -> None:
    errors.setdefault(element_id or "?", []).append(message)


def _owner_id(node: etree._Element) -> str:
    """Id of the BPMN element a (possibly nested extension) node belongs to."""
    while node is not None:
        if etree.QName(node).namespace == BPMN_NS and node.get("id"):
            return str(node.get("id"))
        node = node.getparent()
    return "?"


def validate_tree(
    tree: etree._Element, rules: DiagramRules, filename: str = "diagram.bpmn"
) -> DiagramReport:
    """Check one diagram; raise ValidationFailed with reasons keyed by element id."""
    if etree.QName(tree).namespace != BPMN_NS or etree.QName(tree).localname != "definitions":
        raise ValidationFailed("not a BPMN 2.0 file", {filename: ["root is not bpmn:definitions"]})
    try:
        _xsd_validator().validate(tree, filename)
    except ValidationException as exc:
        raise ValidationFailed(
            f"the diagram does not follow the BPMN 2.0 schema: {exc}", {filename: [str(exc)]}
        ) from exc

    errors: dict[str, list[str]] = {}
    report = DiagramReport({}, {})
    executable = tree.findall("bpmn:process", NS)
    if not executable:
        _element_errors(errors, filename, "the file has no process")
    for process in executable:
        pid = process.get("id", "")
        report.processes[pid] = process.get("name", pid)
        if not process.findall("bpmn:startEvent", NS):
            _element_errors(errors, pid, "the process has no start event")
        report.user_tasks[pid] = _check_user_tasks(
            process, _check_lanes(process, rules, errors), rules, errors
        )
        _check_services(process, rules, errors)
        report.called[pid] = sorted(
            {c.get("calledElement", "") for c in process.iterfind(".//bpmn:callActivity", NS)}
        )
        _check_expressions(process, errors)
        _check_literals(process, errors)
    models = read_models(tree)
    check_models(models, errors)
    if rules.has_form is not None:
        for model in models.values():
            declared = model.properties.get("start_form")
            if declared and not rules.has_form(declared):
                _element_errors(errors, model.process_id, f"start_form {declared!r} is no form")
    if errors:
        raise ValidationFailed("the diagram was refused", errors)
    return report


def _check_lanes(
    process: etree._Element, rules: DiagramRules, errors: dict[str, list[str]]
) -> dict[str, str]:
    """Every lane names a role; returns the lane id of each element a lane holds."""
    lane_of: dict[str, str] = {}
    for lane in process.iterfind(".//bpmn:lane", NS):
        # SpiffWorkflow reports a task's lane by the lane's name, so the name (key, zh or
        # en name of a role) is what must resolve, whatever the id says.
        if rules.role_for_lane(lane.get("name")) is None:
            _element_errors(
                errors, lane.get("id", ""), f"lane {lane.get('name')!r} is not a known role"
            )
        for ref in lane.iterfind("bpmn:flowNodeRef", NS):
            lane_of[(ref.text or "").strip()] = lane.get("id", "")
    return lane_of


def _check_user_tasks(
    process: etree._Element,
    lane_of: dict[str, str],
    rules: DiagramRules,
    errors: dict[str, list[str]],
) -> list[str]:
    """Each user task lies in a role's lane and has a form; returns their ids."""
    found = []
    for task in process.iterfind(".//bpmn:userTask", NS):
        tid = task.get("id", "")
        found.append(tid)
        if tid not in lane_of:
            _element_errors(errors, tid, "a user task must lie in a role's lane")
        if rules.has_form is not None and not rules.has_form(tid):
            _element_errors(errors, tid, f"no form forms/{tid}.json for this user task")
    return found


def _check_services(
    process: etree._Element, rules: DiagramRules, errors: dict[str, list[str]]
) -> None:
    """Service tasks name a service the pack registers; unsupported task kinds refused."""
    for op in process.iterfind(".//spiffworkflow:serviceTaskOperator", NS):
        name = op.get("id", "")
        if name not in rules.services:
            _element_errors(errors, _owner_id(op), f"unknown service {name!r}")
    for tag in ("manualTask", "businessRuleTask", "sendTask", "receiveTask"):
        for node in process.iterfind(f".//bpmn:{tag}", NS):
            _element_errors(errors, node.get("id", ""), f"{tag} is not supported")
    for service in process.iterfind(".//bpmn:serviceTask", NS):
        if service.find(".//spiffworkflow:serviceTaskOperator", NS) is None:
            _element_errors(errors, service.get("id", ""), "service task names no service")


def _check_expressions(process: etree._Element, errors: dict[str, list[str]]) -> None:
    checks: list[tuple[etree._Element, str, bool]] = []
    for path in (
        ".//bpmn:conditionExpression",
        ".//bpmn:timeDuration",
        ".//bpmn:timeDate",
        ".//bpmn:timeCycle",
        ".//bpmn:completionCondition",
        ".//bpmn:loopCardinality",
    ):
        checks += [(n, n.text or "", False) for n in process.iterfind(path, NS)]
    checks += [(n, n.text or "", True) for n in process.iterfind(".//bpmn:script", NS)]
    for tag in ("preScript", "postScript"):
        checks += [(n, n.text or "", True) for n in process.iterfind(f".//spiffworkflow:{tag}", NS)]
    for param in process.iterfind(".//spiffworkflow:parameter", NS):
        checks.append((param, param.get("value", ""), False))
    for prop in process.iterfind(".//spiffworkflow:property", NS):
        if prop.get("name") == "assignee":
            checks.append((prop, prop.get("value", ""), False))
    for node, text, is_script in checks:
        if not text.strip():
            continue
        try:
            expressions.check(text, script=is_script)
        except UnsafeExpression as exc:
            _element_errors(errors, _owner_id(node), f"{text.strip()[:80]!r}: {exc.message}")


_WRAPPERS = {"timerEventDefinition", "multiInstanceLoopCharacteristics"}


def _flow_element_id(node: etree._Element) -> str:
    """Id of the flow element (event, task) a timer or loop definition belongs to."""
    parent = node.getparent()
    while parent is not None and etree.QName(parent).localname in _WRAPPERS:
        parent = parent.getparent()
    return _owner_id(parent if parent is not None else node)


_NOT_LITERAL = object()


def _literal(text: str) -> object:
    """The value of an expression that is a literal (`"P7D"`, `3`); else _NOT_LITERAL:
    what names data is checked when it runs (engine.workflow.bounds)."""
    if len(text) > expressions.MAX_SOURCE_CHARS:
        return _NOT_LITERAL
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_LITERAL


def _duration_error(what: str) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        try:
            durations.parse(value)
        except durations.InvalidDuration as exc:
            return f"{what} is {exc.message}"
        return None

    return check


def _cardinality_error(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return "loopCardinality must be a whole number, 0 or more"
    if value > bounds.MAX_INSTANCES:
        return f"a multi-instance task makes at most {bounds.MAX_INSTANCES} instances, not {value}"
    return None


def _check_literals(process: etree._Element, errors: dict[str, list[str]]) -> None:
    """Durations, dates and cardinalities the diagram spells out are checked now, by the
    rules the engine applies when they run; cycle timers are refused (the worker fires
    only timers with one due time)."""
    checks: list[tuple[str, object, Callable[[object], str | None]]] = []
    for node in process.iterfind(".//bpmn:timeDuration", NS):
        checks.append(
            (_flow_element_id(node), _literal(node.text or ""), _duration_error("the duration"))
        )
    for node in process.iterfind(".//bpmn:timeDate", NS):
        checks.append((_flow_element_id(node), _literal(node.text or ""), _date_error))
    for node in process.iterfind(".//bpmn:loopCardinality", NS):
        checks.append((_flow_element_id(node), _literal(node.text or ""), _cardinality_error))
    for prop in process.iterfind(".//spiffworkflow:property", NS):
        if prop.get("name") == "due_in":
            checks.append((_owner_id(prop), prop.get("value", ""), _duration_error("due_in")))
    for element, value, check in checks:
        reason = None if value is _NOT_LITERAL else check(value)
        if reason is not None:
            _element_errors(errors, element, reason)
    for node in process.iterfind(".//bpmn:timeCycle", NS):
        _element_errors(
            errors, _flow_element_id(node), "cycle timers are not supported: use timeDuration"
        )


def _date_error(value: object) -> str | None:
    try:
        TimerEventDefinition.get_datetime(value)
    except (TypeError, ValueError):
        return "a timer's date must be an ISO 8601 date and time"
    return None


# -- deployment -----------------------------------------------------------------------
