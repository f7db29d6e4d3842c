"""What a draft changes against a deployed version: the BPMN elements added, removed
and changed (with the properties that differ, old and new) and the forms that differ.

Written here in Python, not taken from bpmn-js-differ, because the server needs it
(the API's `/drafts/<id>/diff`, the review page, the approver's record) and that
differ is JavaScript that runs only in the browser.

An element is a semantic BPMN element with an id (a process, lane, participant, flow
node, sequence flow, data object, annotation...), keyed by that id. Layout is no
change: BPMNDI shapes and edges are never read. Each element is reduced to flat facts,
`{property: (kind, text)}`, by the reader tables below, and two versions of an element
differ in the properties whose text differs:

- `type` (a user task that became a service task), every XML attribute but the id
  (`name`, `default`, `calledElement`, `sourceRef`/`targetRef`, `attachedToRef`...);
- `lane`: the innermost lane listing the element (membership counts on the element,
  not on the lane);
- `documentation`, `condition`, `script`, `text` (annotations), `multi_instance`,
  `loop`, one property per event definition (`timer`, `message`, `terminate`...);
- from the extension elements: every `spiffworkflow:property` by its name (`due_in`,
  `assignee`, `record_status`...), the service task's `operator`, `result_variable`
  and `parameter:<name>`, `pre_script`/`post_script`;
- a process's data properties as `data_properties`;
- anything else, under its tag name, as canonical text, so no change goes unseen.

`incoming`/`outgoing` and a lane's `flowNodeRef` are not read: they repeat what the
sequence flows and `lane` already say, so a task inserted on a flow changes that
flow's `targetRef`, not its neighbours.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from lxml import etree

from engine.audit.chain import canonical_json
from engine.errors import ValidationFailed
from engine.workflow.safe_xml import BPMN_NS, SPIFF_NS, safe_tree

_XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
# Tags whose children with an id are elements in their own right.
_CONTAINERS = frozenset(
    {
        "definitions",
        "process",
        "subProcess",
        "transaction",
        "adHocSubProcess",
        "collaboration",
        "laneSet",
        "childLaneSet",
        "lane",
    }
)
# Containers that only hold lanes: walked through, not elements themselves.
_TRANSPARENT = frozenset({"laneSet", "childLaneSet"})
# Children that describe their parent even when they carry an id.
_DETAILS = frozenset(
    {"documentation", "extensionElements", "property", "ioSpecification", "ioBinding"}
)
_DESCRIPTION_WIDTH = 60

Fact = tuple[str, str, str]  # property, kind, text
Reader = Callable[[etree._Element], Iterator[Fact]]


@dataclass(frozen=True)
class Change:
    """One line of the review page: `kind` is a stable code the page translates;
    `description` is the same in English."""

    kind: str
    element: str
    type: str
    property: str | None
    old: str | None
    new: str | None
    description: str


@dataclass(frozen=True)
class ElementChange:
    """An element in both versions whose `properties` differ (old and new texts by
    property; None where the property is absent)."""

    element: str
    type: str
    properties: tuple[str, ...]
    old: Mapping[str, str | None]
    new: Mapping[str, str | None]
    kinds: Mapping[str, str]


@dataclass(frozen=True)
class ModelDiff:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[ElementChange, ...]
    forms_changed: tuple[str, ...]
    changes: tuple[Change, ...]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.forms_changed)

    @property
    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "forms_changed": len(self.forms_changed),
            "changes": len(self.changes),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": [
                {
                    "element": c.element,
                    "type": c.type,
                    "properties": list(c.properties),
                    "kinds": dict(c.kinds),
                    "old": dict(c.old),
                    "new": dict(c.new),
                }
                for c in self.changed
            ],
            "forms_changed": list(self.forms_changed),
            "summary": self.summary,
            "changes": [asdict(c) for c in self.changes],
        }


@dataclass(frozen=True)
class _Element:
    type: str
    name: str | None
    facts: Mapping[str, tuple[str, str]]  # property -> (kind, text)


def diff(
    old_xml: bytes,
    old_forms: Mapping[str, Any],
    new_xml: bytes,
    new_forms: Mapping[str, Any],
    process_id: str | None = None,
) -> ModelDiff:
    """The changes from the old diagram and forms to the new ones, limited to the
    process `process_id` (and its pool) when given."""
    old = _elements(old_xml, "deployed.bpmn", process_id)
    new = _elements(new_xml, "draft.bpmn", process_id)
    labels = {i: _label(i, e) for i, e in (old | new).items()}
    added = tuple(i for i in new if i not in old)
    removed = tuple(i for i in old if i not in new)
    changed = tuple(
        c for c in (_compare(i, old[i], new[i]) for i in new if i in old) if c.properties
    )
    forms = _form_changes(old_forms, new_forms)
    changes = (
        *(_presence("added", i, new[i], labels) for i in added),
        *(_presence("removed", i, old[i], labels) for i in removed),
        *(_property_change(c, p, labels) for c in changed for p in c.properties),
        *forms,
    )
    return ModelDiff(added, removed, changed, tuple(c.element for c in forms), changes)


# -- reading one diagram ------------------------------------------------------------


_BPMN_TAG = f"{{{BPMN_NS}}}"


def _local(node: etree._Element) -> str:
    return str(node.tag).rpartition("}")[2]


def _is_member(parent: etree._Element, child: etree._Element) -> bool:
    """Whether `child` is an element (or a lane set) of the container `parent`."""
    if not isinstance(child.tag, str) or not child.tag.startswith(_BPMN_TAG):
        return False
    if _local(parent) not in _CONTAINERS:
        return False
    tag = _local(child)
    return tag in _TRANSPARENT or (bool(child.get("id")) and tag not in _DETAILS)


def _members(container: etree._Element) -> Iterator[etree._Element]:
    for child in container:
        if _is_member(container, child):
            if _local(child) not in _TRANSPARENT:
                yield child
            yield from _members(child)


def _scope(root: etree._Element, process_id: str | None) -> list[etree._Element]:
    everything = list(_members(root))
    if process_id is None:
        return everything
    process = [n for n in everything if _local(n) == "process" and n.get("id") == process_id]
    pools = [
        n for n in everything if _local(n) == "participant" and n.get("processRef") == process_id
    ]
    return pools + [n for p in process for n in (p, *_members(p))]


def _elements(xml: bytes, filename: str, process_id: str | None) -> dict[str, _Element]:
    root = safe_tree(xml, filename)
    if etree.QName(root).namespace != BPMN_NS or _local(root) != "definitions":
        raise ValidationFailed("not a BPMN 2.0 file", {filename: ["root is not bpmn:definitions"]})
    nodes = _scope(root, process_id)
    lane_of: dict[str, str] = {}
    # Document order puts a lane before its child lanes: the innermost lane wins.
    for lane in (n for n in nodes if _local(n) == "lane"):
        for ref in lane.iterfind(f"{{{BPMN_NS}}}flowNodeRef"):
            lane_of[(ref.text or "").strip()] = str(lane.get("id"))
    return {str(n.get("id")): _Element(_local(n), n.get("name"), _facts(n, lane_of)) for n in nodes}


def _facts(node: etree._Element, lane_of: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    facts: dict[str, tuple[str, str]] = {"type": ("retyped", _local(node))}
    for key, value in node.attrib.items():
        name = _attribute(node, str(key))
        if name is not None:
            facts[name] = (_ATTRIBUTE_KINDS.get(name, "attribute"), value)
    lane = lane_of.get(str(node.get("id")))
    if lane is not None:
        facts["lane"] = ("lane", lane)
    read = [f for c in node if not _is_member(node, c) for f in _read_child(c)]
    # Extension properties are named by the modeler: one that takes a name the
    # element already uses is told apart by a prefix.
    for prop, kind, text in sorted(read, key=lambda f: f[1] == "property"):
        if kind == "property" and prop in facts:
            prop = f"property:{prop}"
        facts[prop] = (kind, f"{facts[prop][1]}\n{text}" if prop in facts else text)
    return facts


def _attribute(node: etree._Element, key: str) -> str | None:
    """The property name of an attribute; None for the id and xsi:type (which says
    how the XML is typed, not what the element does)."""
    qname = etree.QName(key)
    if qname.namespace is None:
        return None if qname.localname == "id" else qname.localname
    if qname.namespace == _XSI_NS:
        return None
    prefixes = {uri: prefix for prefix, uri in node.nsmap.items() if prefix}
    return f"{prefixes.get(qname.namespace, qname.namespace)}:{qname.localname}"


def _text(node: etree._Element) -> str:
    return (node.text or "").strip()


def _canonical(node: etree._Element, skip: Iterable[str] = ()) -> str:
    """A node's attributes, text and children as one line, in document order."""
    parts = []
    for key, value in node.attrib.items():
        # Inside a definition an id may be what it names (a multi-instance item's variable).
        name = "id" if key == "id" else _attribute(node, str(key))
        if name is not None and name not in skip:
            parts.append(f"{name}={value}")
    if _text(node):
        parts.append(_text(node))
    parts.extend(
        f"{_local(child)}({_canonical(child)})" for child in node if isinstance(child.tag, str)
    )
    return "; ".join(parts)


# -- reader tables ------------------------------------------------------------------

_ATTRIBUTE_KINDS = {
    "name": "renamed",
    "default": "default_flow",
    "calledElement": "called_element",
    "sourceRef": "reconnected",
    "targetRef": "reconnected",
    "attachedToRef": "reconnected",
}


def _nothing(node: etree._Element) -> Iterator[Fact]:
    return iter(())


def _as_text(prop: str, kind: str) -> Reader:
    return lambda node: iter([(prop, kind, _text(node))])


def _as_canonical(prop: str, kind: str) -> Reader:
    return lambda node: iter([(prop, kind, _canonical(node))])


def _event_definition(node: etree._Element) -> Iterator[Fact]:
    # Modelers give each definition a generated id that nothing refers to.
    kind = _local(node).removesuffix("EventDefinition")
    yield kind, "event_definition", _canonical(node, skip=("id",)) or kind


def _spiff_properties(node: etree._Element) -> Iterator[Fact]:
    for prop in node.iterfind(f"{{{SPIFF_NS}}}property"):
        yield str(prop.get("name")), "property", prop.get("value") or _text(prop)


def _service_operator(node: etree._Element) -> Iterator[Fact]:
    yield "operator", "service", node.get("id") or ""
    if node.get("resultVariable") is not None:
        yield "result_variable", "service", str(node.get("resultVariable"))
    for param in node.iterfind(f"{{{SPIFF_NS}}}parameters/{{{SPIFF_NS}}}parameter"):
        yield f"parameter:{param.get('id')}", "service", _canonical(param, skip=("id",))


_EXTENSION_READERS: dict[str, Reader] = {
    "properties": _spiff_properties,
    "serviceTaskOperator": _service_operator,
    "preScript": _as_text("pre_script", "script"),
    "postScript": _as_text("post_script", "script"),
}


def _extensions(node: etree._Element) -> Iterator[Fact]:
    for child in node:
        if not isinstance(child.tag, str):
            continue
        tag = _local(child)
        read = _EXTENSION_READERS.get(tag) if etree.QName(child).namespace == SPIFF_NS else None
        yield from (read or _as_canonical(f"extension:{tag}", "extension"))(child)


_READERS: dict[str, Reader] = {
    "incoming": _nothing,
    "outgoing": _nothing,
    "flowNodeRef": _nothing,
    "property": _as_canonical("data_properties", "attribute"),
    "documentation": _as_text("documentation", "documentation"),
    "text": _as_text("text", "documentation"),
    "conditionExpression": _as_text("condition", "condition"),
    "script": _as_text("script", "script"),
    "multiInstanceLoopCharacteristics": _as_canonical("multi_instance", "multi_instance"),
    "standardLoopCharacteristics": _as_canonical("loop", "multi_instance"),
    "extensionElements": _extensions,
}


def _read_child(node: etree._Element) -> Iterator[Fact]:
    if not isinstance(node.tag, str):  # comments, processing instructions
        return iter(())
    tag = _local(node)
    if tag in _READERS:
        return _READERS[tag](node)
    if tag.endswith("EventDefinition"):
        return _event_definition(node)
    return _as_canonical(tag, "attribute")(node)


# -- comparing ----------------------------------------------------------------------


def _compare(element: str, old: _Element, new: _Element) -> ElementChange:
    names = [*new.facts, *(p for p in old.facts if p not in new.facts)]
    differ = tuple(p for p in names if old.facts.get(p) != new.facts.get(p))
    return ElementChange(
        element,
        new.type,
        differ,
        {p: _value(old, p) for p in differ},
        {p: _value(new, p) for p in differ},
        {p: (new.facts.get(p) or old.facts[p])[0] for p in differ},
    )


def _value(element: _Element, prop: str) -> str | None:
    fact = element.facts.get(prop)
    return None if fact is None else fact[1]


def _form_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[Change, ...]:
    changes = []
    for task in sorted(set(old) | set(new)):
        if task not in new:
            changes.append(_form_change("form_removed", task, f"form of {task} removed"))
        elif task not in old:
            changes.append(_form_change("form_added", task, f"form of {task} added"))
        elif canonical_json(old[task]) != canonical_json(new[task]):
            parts = _differing_keys(old[task], new[task])
            changes.append(_form_change("form_changed", task, f"form of {task} changed{parts}"))
    return tuple(changes)


def _form_change(kind: str, task: str, description: str) -> Change:
    return Change(kind, task, "form", None, None, None, description)


def _differing_keys(old: Any, new: Any) -> str:
    if not (isinstance(old, Mapping) and isinstance(new, Mapping)):
        return ""
    keys = sorted(
        k for k in set(old) | set(new) if canonical_json(old.get(k)) != canonical_json(new.get(k))
    )
    return f" ({', '.join(keys)})"


# -- describing ---------------------------------------------------------------------


def _label(element: str, node: _Element) -> str:
    return f"{node.name} ({element})" if node.name else element


def _words(bpmn_type: str) -> str:
    """`userTask` -> `user task`."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", bpmn_type).lower()


def _short(text: str | None, labels: Mapping[str, str] | None = None) -> str:
    if text is None:
        return "(none)"
    if labels is not None and text in labels:
        return labels[text]
    one_line = " ".join(text.split())
    if len(one_line) > _DESCRIPTION_WIDTH:
        return f'"{one_line[: _DESCRIPTION_WIDTH - 1]}…"'
    return f'"{one_line}"'


def _presence(kind: str, element: str, node: _Element, labels: Mapping[str, str]) -> Change:
    description = f"{kind} {_words(node.type)} {labels[element]}"
    return Change(kind, element, node.type, None, None, None, description)


# Properties whose values are element ids: described by the elements' labels.
_REFERENCES = frozenset({"lane", "default", "sourceRef", "targetRef", "attachedToRef"})


def _property_change(change: ElementChange, prop: str, labels: Mapping[str, str]) -> Change:
    old, new = change.old[prop], change.new[prop]
    refs = labels if prop in _REFERENCES else None
    if old is None:
        what = f"{prop} set to {_short(new, refs)}"
    elif new is None:
        what = f"{prop} removed (was {_short(old, refs)})"
    else:
        what = f"{prop} changed from {_short(old, refs)} to {_short(new, refs)}"
    description = f"{_words(change.type)} {labels[change.element]}: {what}"
    return Change(change.kinds[prop], change.element, change.type, prop, old, new, description)
