"""What a diagram declares beyond execution: names in both languages, the record it
keeps and where each element puts it, how its tasks are labelled.

These are `spiffworkflow:property` elements (name, value) in an element's
`extensionElements`, as the modeler's properties panel writes them:

on the process
- `name_en`: the process's English name (its `name` attribute is the zh one);
- `documentation_en`: what the process is for, in English (its bpmn:documentation is
  the zh text), shown where it is started;
- `record_prefix`: instances keep a numbered record, e.g. `SI` → SI-2026-0001;
- `record_status:<key>` = `<zh> | <en>`: a record status and its labels;
- `task_label`: an expression over a task's data naming which case it is about
  (a string or a list of strings; e.g. an RFC number and its measure's title);
- `start_form`: the form whose fields a start request's initial data may set
  (default: the forms of the user tasks the start event leads to first);

on an element
- `name_en`: its English name (a user task's form title serves too);
- `record_status`: the record's status while the element is active (or, on an end
  event, once the instance ended there); must be declared on the process;
- `record_log` (+ `record_log_fields`): each completion of this user task appends an
  entry to the record's log of that name, with the fields named (space separated),
  who and when (the review rounds, the monitoring readings);
- `record_actor`: the record keeps who completed this task under that name.

The engine reads nothing else of the procedure from anywhere but here and the forms.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from engine.errors import UnsafeExpression, ValidationFailed
from engine.workflow import expressions
from engine.workflow.safe_xml import BPMN_NS, NS, safe_tree

_STATUS_PREFIX = "record_status:"


@dataclass(frozen=True)
class Element:
    id: str
    kind: str  # BPMN tag: userTask, endEvent, exclusiveGateway …
    name: str  # as written in the diagram (zh)
    name_en: str
    properties: Mapping[str, str] = field(default_factory=dict)

    def label(self, locale: str) -> str:
        if locale.startswith("zh"):
            return self.name or self.name_en or self.id
        return self.name_en or self.name or self.id


@dataclass(frozen=True)
class RecordLog:
    name: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class ProcessModel:
    process_id: str
    name: str
    name_en: str
    elements: Mapping[str, Element]
    properties: Mapping[str, str]
    # Names of the lanes that hold the process's start events: their roles may start it
    # (none when the start events lie in no lane: anyone may).
    starter_lanes: frozenset[str] = frozenset()
    documentation: str = ""  # the process's bpmn:documentation (zh); `documentation_en`
    # The user tasks a new instance first waits at: the first ones on each path from a
    # start event along the sequence flows.
    first_tasks: tuple[str, ...] = ()

    def about(self, locale: str) -> str:
        """What the process is for, as its start page shows it."""
        if locale.startswith("zh"):
            return self.documentation or self.properties.get("documentation_en", "")
        return self.properties.get("documentation_en", "") or self.documentation

    @property
    def record_prefix(self) -> str | None:
        return self.properties.get("record_prefix") or None

    @property
    def record_statuses(self) -> dict[str, dict[str, str]]:
        """Status key -> labels by locale, in the order the process declares them."""
        statuses: dict[str, dict[str, str]] = {}
        for name, value in self.properties.items():
            if name.startswith(_STATUS_PREFIX):
                zh, _, en = value.partition("|")
                key = name[len(_STATUS_PREFIX) :].strip()
                statuses[key] = {"zh-CN": zh.strip() or key, "en": en.strip() or zh.strip() or key}
        return statuses

    @property
    def first_record_status(self) -> str | None:
        return next(iter(self.record_statuses), None)

    def status_of(self, element_id: str) -> str | None:
        element = self.elements.get(element_id)
        return element.properties.get("record_status") if element is not None else None

    def end_status_of(self, element_id: str) -> str | None:
        element = self.elements.get(element_id)
        if element is None or element.kind != "endEvent":
            return None
        return element.properties.get("record_status")

    def log_of(self, element_id: str) -> RecordLog | None:
        element = self.elements.get(element_id)
        if element is None or not element.properties.get("record_log"):
            return None
        fields = tuple(element.properties.get("record_log_fields", "").split())
        return RecordLog(element.properties["record_log"], fields)

    def actor_field_of(self, element_id: str) -> str | None:
        element = self.elements.get(element_id)
        return element.properties.get("record_actor") if element is not None else None

    @property
    def record_logs(self) -> list[str]:
        return sorted(
            {
                e.properties["record_log"]
                for e in self.elements.values()
                if e.properties.get("record_log")
            }
        )

    @property
    def start_forms(self) -> tuple[str, ...]:
        """The forms whose fields initial data may set when someone starts the process."""
        declared = self.properties.get("start_form")
        return (declared,) if declared else self.first_tasks

    @property
    def task_label(self) -> str | None:
        return self.properties.get("task_label") or None

    def label(self, locale: str) -> str:
        if locale.startswith("zh"):
            return self.name or self.name_en or self.process_id
        return self.name_en or self.name or self.process_id

    def element_label(self, element_id: str, locale: str) -> str | None:
        element = self.elements.get(element_id)
        return element.label(locale) if element is not None else None


def _properties(node: etree._Element) -> dict[str, str]:
    """The `spiffworkflow:property` entries directly under the node's extensionElements."""
    found: dict[str, str] = {}
    extensions = node.find("bpmn:extensionElements", NS)
    if extensions is None:
        return found
    for prop in extensions.iterfind("spiffworkflow:properties/spiffworkflow:property", NS):
        name = prop.get("name")
        if name:
            found[name] = prop.get("value", "")
    return found


def read_models(tree: etree._Element) -> dict[str, ProcessModel]:
    """The model of every process in a parsed BPMN tree."""
    models: dict[str, ProcessModel] = {}
    for process in tree.iterfind("bpmn:process", NS):
        process_id = process.get("id", "")
        elements: dict[str, Element] = {}
        for node in process.iter():
            if not isinstance(node.tag, str) or etree.QName(node).namespace != BPMN_NS:
                continue
            element_id = node.get("id")
            kind = etree.QName(node).localname
            if not element_id or node is process or kind in ("lane", "laneSet", "property"):
                continue
            properties = _properties(node)
            elements[element_id] = Element(
                element_id,
                kind,
                node.get("name") or "",
                properties.get("name_en", ""),
                properties,
            )
        properties = _properties(process)
        starts = {e.id for e in elements.values() if e.kind == "startEvent"}
        starter_lanes = frozenset(
            lane.get("name") or ""
            for lane in process.iterfind(".//bpmn:lane", NS)
            if starts & {(ref.text or "").strip() for ref in lane.iterfind("bpmn:flowNodeRef", NS)}
        )
        models[process_id] = ProcessModel(
            process_id,
            process.get("name") or "",
            properties.get("name_en", ""),
            elements,
            properties,
            starter_lanes,
            (process.findtext("bpmn:documentation", default="", namespaces=NS) or "").strip(),
            _first_tasks(process, elements, starts),
        )
    return models


def _first_tasks(
    process: etree._Element, elements: Mapping[str, Element], starts: set[str]
) -> tuple[str, ...]:
    """The user tasks first reached from the start events, following the process's own
    sequence flows through every element that does not wait for a person."""
    following: dict[str, list[str]] = {}
    for flow in process.iterfind("bpmn:sequenceFlow", NS):
        following.setdefault(flow.get("sourceRef", ""), []).append(flow.get("targetRef", ""))
    found: list[str] = []
    seen = set(starts)
    queue = sorted(starts)
    while queue:
        for target in following.get(queue.pop(0), []):
            if target in seen or target not in elements:
                continue
            seen.add(target)
            if elements[target].kind == "userTask":
                found.append(target)
            else:
                queue.append(target)
    return tuple(found)


def record_status_problems(model: ProcessModel) -> list[tuple[str, str]]:
    """(element id, reason) for each record status the process cannot keep."""
    problems = []
    statuses = model.record_statuses
    for element in model.elements.values():
        status = element.properties.get("record_status")
        if status and status not in statuses:
            problems.append(
                (
                    element.id,
                    f"record status {status!r} is not declared on the process "
                    f"(property record_status:{status})",
                )
            )
        if status and not model.record_prefix:
            problems.append(
                (
                    element.id,
                    "a record status needs the process to keep a record (property record_prefix)",
                )
            )
    return problems


def task_label_problem(model: ProcessModel) -> str | None:
    """Why the process's task_label expression would be refused, if it would."""
    if not model.task_label:
        return None
    try:
        expressions.check(model.task_label)
    except UnsafeExpression as exc:
        return f"task_label: {exc.message}"
    return None


_cache_lock = threading.Lock()
_cache: dict[tuple[int, str], dict[str, ProcessModel]] = {}


def models_of(definition: Any) -> dict[str, ProcessModel]:
    """The models of a deployed definition (id, content_hash, bpmn_xml, filename), read
    once per process: definitions never change."""
    key = (definition.id, definition.content_hash)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    try:
        models = read_models(
            safe_tree(definition.bpmn_xml.encode("utf-8"), definition.filename or "diagram.bpmn")
        )
    except ValidationFailed:
        models = {}
    with _cache_lock:
        _cache[key] = models
    return models


def model_of(definition: Any) -> ProcessModel:
    models = models_of(definition)
    found = models.get(definition.process_id)
    if found is None:
        return ProcessModel(definition.process_id, definition.name or "", "", {}, {})
    return found
