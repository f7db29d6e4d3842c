"""Lint: the rules a process's diagram and its forms must follow, as findings on the
elements they concern. The modeler shows them live on the canvas; a draft with an
error finding cannot be submitted; deploy refuses a diagram with one
(engine.workflow.validation is a gate over these same rules).

Rules (the `rule` of a finding), each naming the element it concerns:

- `not-bpmn`: the root is no bpmn:definitions, or the file breaks the BPMN 2.0 schema;
- `no-process`: the file defines no process, or not the process being edited;
- `no-start-event`: a process without a start event;
- `form-required`: a user task without a form, a `start_form` naming none;
- `lane-role`: a lane whose name is no role of the pack;
- `task-in-lane`: a user task in no lane (nobody would be asked to do it);
- `service-registered`: a service task naming a service the pack does not register,
  or none;
- `unsupported-task`: manual, business rule, send and receive tasks;
- `unsafe-expression`: a condition, script, timer, assignee, task label … the
  evaluator refuses (engine.workflow.expressions);
- `bounded-literal`: a duration, date or loop cardinality written out that breaks the
  bounds it runs by; cycle timers;
- `record-status`: a record status the process does not declare or cannot keep;
- `call-target`: a call activity to a process neither deployed nor in the same file;
- `unreachable`: a flow node no token can reach from a start event (engine.modeling.graph);
- `gateway-default`: an exclusive or inclusive gateway that splits without a default
  flow, or with a flow that is neither conditional nor the default;
- `form-schema`: a form the engine cannot use (engine.forms.library.form_problems: the
  2020-12 meta-schema, no reference outside the form, bounded, field names, known
  `x-` keywords, prefills and checks);
- `form-labels`: a form title or field without both zh-CN and en labels;
- `form-orphan` (a warning): a form for no user task and no start form.

What can never be a diagram (not XML, DTDs or entities, too large or too deep, not
UTF-8: engine.workflow.safe_xml) and forms that are no bounded object of form
documents are refused outright (ValidationFailed, a 422): there is no element to
show a finding on.
"""

from __future__ import annotations

import ast
import json
import threading
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.spiff.parser.process import BpmnValidator

from engine.errors import UnsafeExpression, ValidationFailed
from engine.forms.library import form_problems, is_form_key
from engine.inputs import json_problem
from engine.modeling.graph import flow_graph
from engine.pack import Pack, Prefill
from engine.workflow import bounds, durations, expressions
from engine.workflow.model import ProcessModel, read_models, record_status_problems
from engine.workflow.model import task_label_problem as _task_label_problem
from engine.workflow.safe_xml import BPMN_NS, NS, safe_tree

ERROR = "error"
WARNING = "warning"

# Forms come with every draft and every live lint request, and each is read against the
# meta-schema and walked by every rule: bounded, so that a request costs little.
# A procedure has a few dozen user tasks (the bundled pack 16 forms); 200 leaves room.
MAX_FORMS = 200
# The largest bundled form is under 4 KB of JSON: a form a person can fill in is far
# below this, and 200 of them still fit one request (engine.settings).
MAX_FORM_BYTES = 64 * 1024
# Bundled forms nest at most 9 levels (rows of objects in an array field); each level is
# a recursion in the validators, the form renderer and the data dictionary.
MAX_FORM_DEPTH = 16


@dataclass(frozen=True)
class Finding:
    element: str  # a BPMN element id, the task id a form is keyed by, or the process id
    rule: str
    message: str
    severity: str = ERROR

    def as_json(self) -> dict[str, str]:
        return {
            "element": self.element,
            "rule": self.rule,
            "message": self.message,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class LintContext:
    """What a diagram may name, as the pack and the deployed processes define it."""

    role_for_lane: Callable[[str | None], str | None]  # the pack's RoleBook.for_lane
    services: Container[str]
    # Process ids a call activity may name besides the file's own; None: not checked
    # (deploy resolves every call against the database itself).
    deployed: Container[str] | None = frozenset()
    prefills: Mapping[str, Prefill] = field(default_factory=dict)
    check_functions: Container[str] | None = None
    # The data dictionary's variables (name -> schema), for the condition help.
    variables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, pack: Pack, deployed: Iterable[str] = ()) -> LintContext:
        return cls(
            pack.roles.for_lane,
            frozenset(pack.services),
            frozenset(deployed),
            pack.prefills,
            frozenset(pack.checks),
            pack.variables.get("variables") or {},
        )


def lint(
    xml: bytes,
    forms: Mapping[str, Any],
    context: LintContext,
    process_id: str | None = None,
) -> list[Finding]:
    """Every finding on a diagram (of process `process_id`, when named) and its forms,
    {task id: form document}. Raises ValidationFailed for what can never be a diagram
    and for forms beyond their bounds."""
    checked = bounded_forms(forms)
    tree = safe_tree(xml, "bpmn")
    where = process_id or tree.get("id") or "definitions"
    return lint_tree(tree, context, forms=checked, where=where, process_id=process_id)


def bounded_forms(forms: Any) -> Mapping[str, Mapping[str, Any]]:
    """`forms` when it is an object of at most MAX_FORMS form documents keyed by task id,
    each at most MAX_FORM_BYTES of JSON and MAX_FORM_DEPTH deep; else ValidationFailed."""
    if not isinstance(forms, Mapping):
        raise ValidationFailed("forms must be an object", {"forms": ["not an object"]})
    if len(forms) > MAX_FORMS:
        raise ValidationFailed(
            f"at most {MAX_FORMS} forms", {"forms": [f"{len(forms)} forms, at most {MAX_FORMS}"]}
        )
    for key, document in forms.items():
        if not isinstance(key, str) or not is_form_key(key):
            raise ValidationFailed(
                "forms are keyed by task id", {"forms": [f"{str(key)[:40]!r} is no task id"]}
            )
        reason = _form_bound(document)
        if reason:
            raise ValidationFailed(f"form {key}: {reason}", {f"forms/{key}": [reason]})
    return forms


def _form_bound(document: Any) -> str | None:
    if not isinstance(document, Mapping):
        return "a form is an object"
    if _depth(document) > MAX_FORM_DEPTH:
        return f"nested more than {MAX_FORM_DEPTH} levels deep"
    problem = json_problem(document)
    if problem:
        return f"{problem[0] or 'the form'} {problem[1]}"
    if len(json.dumps(document, ensure_ascii=False).encode("utf-8")) > MAX_FORM_BYTES:
        return f"larger than {MAX_FORM_BYTES} bytes of JSON"
    return None


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_FORM_DEPTH:
            break
        if isinstance(item, Mapping):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
    return deepest


# -- the rules ---------------------------------------------------------------------------


@dataclass
class Diagram:
    """A parsed diagram with what its rules look at."""

    tree: etree._Element
    context: LintContext
    forms: Mapping[str, Any] | None  # the form documents, when known
    has_form: Callable[[str], bool] | None  # None: forms are not checked at all
    where: str  # names the file when no element can be named
    process_id: str | None = None  # the process being edited
    processes: list[etree._Element] = field(default_factory=list)
    models: dict[str, ProcessModel] = field(default_factory=dict)


def lint_tree(
    tree: etree._Element,
    context: LintContext,
    *,
    forms: Mapping[str, Any] | None = None,
    has_form: Callable[[str], bool] | None = None,
    where: str = "diagram.bpmn",
    process_id: str | None = None,
) -> list[Finding]:
    """Every finding on a parsed diagram (engine.workflow.safe_xml.safe_tree). With
    `forms`, the form documents are checked too and each user task must have one; with
    only `has_form`, each user task must have a form it knows."""
    if has_form is None and forms is not None:
        has_form = forms.__contains__
    diagram = Diagram(tree, context, forms, has_form, where, process_id)
    refused = _not_bpmn(diagram)
    if refused is not None:
        return [refused]
    diagram.processes = tree.findall("bpmn:process", NS)
    diagram.models = read_models(tree)
    return [finding for rule in RULES for finding in rule(diagram)]


_validator_lock = threading.Lock()
_validator: BpmnValidator | None = None


def _xsd_validator() -> BpmnValidator:
    # Loading the BPMN XSD takes ~100 ms: once per process, on first use.
    global _validator
    with _validator_lock:
        if _validator is None:
            _validator = BpmnValidator()
        return _validator


def _not_bpmn(d: Diagram) -> Finding | None:
    root = etree.QName(d.tree)
    if root.namespace != BPMN_NS or root.localname != "definitions":
        return Finding(d.where, "not-bpmn", "not a BPMN 2.0 file: the root is not bpmn:definitions")
    try:
        _xsd_validator().validate(d.tree, d.where)
    except ValidationException as exc:
        element = _element_at_line(d.tree, exc.line_number) or d.where
        return Finding(
            element, "not-bpmn", f"the diagram does not follow the BPMN 2.0 schema: {exc}"
        )
    return None


def _element_at_line(tree: etree._Element, line: Any) -> str | None:
    if not isinstance(line, int):
        return None
    for node in tree.iter():
        if node.sourceline == line:
            owner = owner_id(node)
            return None if owner == "?" else owner
    return None


def owner_id(node: etree._Element) -> str:
    """Id of the BPMN element a (possibly nested extension) node belongs to."""
    while node is not None:
        if etree.QName(node).namespace == BPMN_NS and node.get("id"):
            return str(node.get("id"))
        node = node.getparent()
    return "?"


def _no_process(d: Diagram) -> Iterator[Finding]:
    ids = {p.get("id") for p in d.processes}
    if not ids:
        yield Finding(d.where, "no-process", "the file has no process")
    elif d.process_id is not None and d.process_id not in ids:
        yield Finding(d.process_id, "no-process", f"the file defines no process {d.process_id!r}")


def _no_start_event(d: Diagram) -> Iterator[Finding]:
    for process in d.processes:
        if not process.findall("bpmn:startEvent", NS):
            yield Finding(process.get("id", ""), "no-start-event", "the process has no start event")


def _lanes(d: Diagram) -> Iterator[Finding]:
    """Every lane names a role; every user task lies in a lane."""
    for process in d.processes:
        in_lane: set[str] = set()
        for lane in process.iterfind(".//bpmn:lane", NS):
            # SpiffWorkflow reports a task's lane by the lane's name, so the name (key,
            # zh or en name of a role) is what must resolve, whatever the id says.
            if d.context.role_for_lane(lane.get("name")) is None:
                yield Finding(
                    lane.get("id", ""),
                    "lane-role",
                    f"lane {lane.get('name')!r} is not a known role",
                )
            in_lane |= {(ref.text or "").strip() for ref in lane.iterfind("bpmn:flowNodeRef", NS)}
        for task in process.iterfind(".//bpmn:userTask", NS):
            if task.get("id", "") not in in_lane:
                yield Finding(
                    task.get("id", ""), "task-in-lane", "a user task must lie in a role's lane"
                )


def _forms_required(d: Diagram) -> Iterator[Finding]:
    has_form = d.has_form
    if has_form is None:
        return
    for task in d.tree.iterfind("bpmn:process//bpmn:userTask", NS):
        task_id = task.get("id", "")
        if not has_form(task_id):
            hint = (
                ""
                if is_form_key(task_id)
                else " (a form's task id is a letter, then letters, digits, _ . -)"
            )
            yield Finding(task_id, "form-required", f"the user task has no form{hint}")
    for model in d.models.values():
        declared = model.properties.get("start_form")
        if declared and not has_form(declared):
            yield Finding(model.process_id, "form-required", f"start_form {declared!r} is no form")


def _services(d: Diagram) -> Iterator[Finding]:
    """Service tasks name a service the pack registers; unsupported task kinds refused."""
    for process in d.processes:
        for op in process.iterfind(".//spiffworkflow:serviceTaskOperator", NS):
            name = op.get("id", "")
            if name not in d.context.services:
                yield Finding(owner_id(op), "service-registered", f"unknown service {name!r}")
        for service in process.iterfind(".//bpmn:serviceTask", NS):
            if service.find(".//spiffworkflow:serviceTaskOperator", NS) is None:
                yield Finding(
                    service.get("id", ""), "service-registered", "the service task names no service"
                )
        for tag in ("manualTask", "businessRuleTask", "sendTask", "receiveTask"):
            for node in process.iterfind(f".//bpmn:{tag}", NS):
                yield Finding(node.get("id", ""), "unsupported-task", f"{tag} is not supported")


# Expression-valued extension properties (engine.workflow.model, engine.projections).
_EXPRESSION_PROPERTIES = ("assignee",)


def _expressions(d: Diagram) -> Iterator[Finding]:
    """Every expression and script the diagram holds passes the evaluator's check."""
    for process in d.processes:
        for node, text, is_script in _expression_nodes(process):
            if not text.strip():
                continue
            try:
                expressions.check(text, script=is_script)
            except UnsafeExpression as exc:
                yield Finding(
                    owner_id(node), "unsafe-expression", f"{text.strip()[:80]!r}: {exc.message}"
                )
    for model in d.models.values():
        problem = _task_label_problem(model)
        if problem:
            yield Finding(model.process_id, "unsafe-expression", problem)


def _expression_nodes(process: etree._Element) -> Iterator[tuple[etree._Element, str, bool]]:
    for path in (
        ".//bpmn:conditionExpression",
        ".//bpmn:timeDuration",
        ".//bpmn:timeDate",
        ".//bpmn:timeCycle",
        ".//bpmn:completionCondition",
        ".//bpmn:loopCardinality",
    ):
        yield from ((n, n.text or "", False) for n in process.iterfind(path, NS))
    yield from ((n, n.text or "", True) for n in process.iterfind(".//bpmn:script", NS))
    for tag in ("preScript", "postScript"):
        yield from (
            (n, n.text or "", True) for n in process.iterfind(f".//spiffworkflow:{tag}", NS)
        )
    for param in process.iterfind(".//spiffworkflow:parameter", NS):
        yield param, param.get("value", ""), False
    for prop in process.iterfind(".//spiffworkflow:property", NS):
        if prop.get("name") in _EXPRESSION_PROPERTIES:
            yield prop, prop.get("value", ""), False


_WRAPPERS = {"timerEventDefinition", "multiInstanceLoopCharacteristics"}


def _flow_element_id(node: etree._Element) -> str:
    """Id of the flow element (event, task) a timer or loop definition belongs to."""
    parent = node.getparent()
    while parent is not None and etree.QName(parent).localname in _WRAPPERS:
        parent = parent.getparent()
    return owner_id(parent if parent is not None else node)


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


def _date_error(value: object) -> str | None:
    try:
        TimerEventDefinition.get_datetime(value)
    except (TypeError, ValueError):
        return "a timer's date must be an ISO 8601 date and time"
    return None


def _literals(d: Diagram) -> Iterator[Finding]:
    """Durations, dates and cardinalities the diagram spells out are checked now, by the
    rules the engine applies when they run; cycle timers are refused (the worker fires
    only timers with one due time)."""
    for process in d.processes:
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
                checks.append((owner_id(prop), prop.get("value", ""), _duration_error("due_in")))
        for element, value, check in checks:
            reason = None if value is _NOT_LITERAL else check(value)
            if reason is not None:
                yield Finding(element, "bounded-literal", reason)
        for node in process.iterfind(".//bpmn:timeCycle", NS):
            yield Finding(
                _flow_element_id(node),
                "bounded-literal",
                "cycle timers are not supported: use timeDuration",
            )


def _record_statuses(d: Diagram) -> Iterator[Finding]:
    for model in d.models.values():
        for element_id, message in record_status_problems(model):
            yield Finding(element_id, "record-status", message)


def _call_targets(d: Diagram) -> Iterator[Finding]:
    deployed = d.context.deployed
    if deployed is None:
        return
    own = {p.get("id") for p in d.processes}
    for call in d.tree.iterfind("bpmn:process//bpmn:callActivity", NS):
        target = (call.get("calledElement") or "").strip()
        if not target:
            yield Finding(call.get("id", ""), "call-target", "the call activity names no process")
        elif target not in own and target not in deployed:
            yield Finding(
                call.get("id", ""),
                "call-target",
                f"process {target!r} is neither deployed nor defined in this file",
            )


def _unreachable(d: Diagram) -> Iterator[Finding]:
    """Flow nodes no token can reach (in a process without a start event, which
    no-start-event reports, every node would be: nothing is said of them)."""
    for process in d.processes:
        if process.find("bpmn:startEvent", NS) is None:
            continue
        for node_id in flow_graph(process).unreachable():
            yield Finding(node_id, "unreachable", "no path from a start event reaches this element")


_SPLITTING = ("exclusiveGateway", "inclusiveGateway")


def _gateway_defaults(d: Diagram) -> Iterator[Finding]:
    """A gateway that decides between flows has a default flow for when no condition
    holds, and every other flow has a condition (else it is a default in disguise, and
    which one is taken depends on the order of the XML)."""
    for process in d.processes:
        leaving: dict[str, list[etree._Element]] = {}
        for flow in process.iterfind(".//bpmn:sequenceFlow", NS):
            leaving.setdefault(flow.get("sourceRef", ""), []).append(flow)
        for gateway in process.iter(*(f"{{{BPMN_NS}}}{k}" for k in _SPLITTING)):
            reason = _default_problem(gateway, leaving.get(gateway.get("id", ""), []))
            if reason:
                yield Finding(gateway.get("id", ""), "gateway-default", reason)


def _default_problem(gateway: etree._Element, flows: list[etree._Element]) -> str | None:
    if len(flows) < 2:
        return None
    default = gateway.get("default")
    if default not in {f.get("id") for f in flows}:
        return "the gateway has no default flow (taken when no condition holds)"
    unconditioned = [
        f.get("id", "")
        for f in flows
        if f.get("id") != default
        and not (f.findtext("bpmn:conditionExpression", default="", namespaces=NS) or "").strip()
    ]
    if unconditioned:
        return f"flows {', '.join(unconditioned)} have no condition and are not the default"
    return None


def _form_documents(d: Diagram) -> Iterator[Finding]:
    """Each form is one the engine can use, labelled in both languages."""
    for key, document in (d.forms or {}).items():
        for rule, problem in form_document_problems(
            document, d.context.prefills, d.context.check_functions
        ):
            yield Finding(key, rule, problem)


def form_document_problems(
    document: Any, prefills: Mapping[str, Prefill], check_functions: Container[str] | None
) -> list[tuple[str, str]]:
    """(rule, problem) for each reason one form cannot be used: the rules a draft's forms
    are linted by, and the form editor's preview refuses by."""
    return [("form-schema", p) for p in form_problems(document, prefills, check_functions)] + [
        ("form-labels", p) for p in label_problems(document)
    ]


LOCALES = ("zh-CN", "en")


def label_problems(document: Any) -> list[str]:
    """What of a form's title and fields lacks a zh-CN or en label."""
    if not isinstance(document, Mapping):
        return []
    problems = []
    title = document.get("title")
    missing = [
        loc for loc in LOCALES if not _text(title.get(loc) if isinstance(title, Mapping) else None)
    ]
    if missing:
        problems.append(f"the form's title needs {' and '.join(missing)}")
    schema = document.get("schema")
    for path, prop in _fields(schema if isinstance(schema, Mapping) else {}, ""):
        missing = [
            loc
            for loc, key in zip(LOCALES, ("title", "x-title-en"), strict=True)
            if not _text(prop.get(key))
        ]
        if missing:
            problems.append(
                f"field {path} needs a {' and an '.join(missing)} label (title, x-title-en)"
            )
    return problems


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _fields(schema: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every field of a form: its properties, and those of the rows of its lists."""
    properties = schema.get("properties")
    for name, prop in (properties if isinstance(properties, Mapping) else {}).items():
        if not isinstance(prop, Mapping):
            continue
        inner = f"{path}/{name}" if path else str(name)
        yield inner, prop
        yield from _fields(prop, inner)
        items = prop.get("items")
        if isinstance(items, Mapping):
            yield from _fields(items, inner)


def _orphan_forms(d: Diagram) -> Iterator[Finding]:
    if d.forms is None:
        return
    used = {t.get("id") for t in d.tree.iterfind("bpmn:process//bpmn:userTask", NS)}
    used |= {m.properties.get("start_form") for m in d.models.values()}
    for key in d.forms:
        if key not in used:
            yield Finding(
                key, "form-orphan", "the form belongs to no user task and is no start form", WARNING
            )


RULES: tuple[Callable[[Diagram], Iterable[Finding]], ...] = (
    _no_process,
    _no_start_event,
    _lanes,
    _forms_required,
    _services,
    _expressions,
    _literals,
    _record_statuses,
    _call_targets,
    _unreachable,
    _gateway_defaults,
    _form_documents,
    _orphan_forms,
)


def errors_of(findings: Iterable[Finding]) -> dict[str, list[str]]:
    """The error findings' messages by element, as a 422 details them."""
    errors: dict[str, list[str]] = {}
    for finding in findings:
        if finding.severity == ERROR:
            errors.setdefault(finding.element or "?", []).append(finding.message)
    return errors
