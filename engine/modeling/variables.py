"""The condition help: which process variables may hold a value before each sequence
flow and gateway of a diagram, so that a modeler writing a condition is offered names
that exist there.

A variable is known at an element when something on some path from a start event to
it sets it: the process's start form, the form of a user task (a multi-instance task
sets its output collection instead), a service task's result, a script's assignments.
What the data dictionary declares (a pack's variables.json: what no form sets) and
nothing in the diagram sets is offered everywhere, since where it gets its value is
not in the diagram (pass the variables.json declarations, not the whole dictionary:
the dictionary holds every form's fields, which are known only after their tasks).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from lxml import etree

from engine.errors import UnsafeExpression
from engine.modeling.graph import FlowGraph, flow_graph, kind_of
from engine.workflow import expressions
from engine.workflow.model import read_models
from engine.workflow.safe_xml import NS, safe_tree

Variable = dict[str, str]  # {"name", "title", "type"}


def variables_known(
    xml: bytes, forms: Mapping[str, Any], dictionary_variables: Mapping[str, Mapping[str, Any]]
) -> dict[str, list[Variable]]:
    """{sequence flow or gateway id: [{"name", "title", "type"}, …]} for every process of
    the diagram; `forms` by task id, `dictionary_variables` by name (JSON Schemas)."""
    tree = safe_tree(xml, "bpmn")
    models = read_models(tree)
    known: dict[str, list[Variable]] = {}
    for process in tree.iterfind("bpmn:process", NS):
        model = models.get(process.get("id", ""))
        start_form = model.properties.get("start_form") if model is not None else None
        known.update(_known_in(process, start_form, forms, dictionary_variables))
    return known


class _Catalogue:
    """Variables by name, each once, with its bit in the sets the flow analysis joins."""

    def __init__(self, dictionary: Mapping[str, Mapping[str, Any]]) -> None:
        self.dictionary = dictionary
        self.entries: list[Variable] = []
        self.bit_of: dict[str, int] = {}

    def bits(self, fields: Mapping[str, Any]) -> int:
        """The bit set of `fields` (name -> schema, or None when only named)."""
        found = 0
        for name, schema in fields.items():
            if name not in self.bit_of:
                described = schema if isinstance(schema, Mapping) else self.dictionary.get(name)
                self.bit_of[name] = len(self.entries)
                self.entries.append(_entry(name, described or {}))
            found |= 1 << self.bit_of[name]
        return found

    def listed(self, bits: int) -> list[Variable]:
        """The variables of `bits`, then those the dictionary declares and nothing in the
        diagram sets (a variable the diagram sets is known only where it was set)."""
        chosen = [e for n, e in enumerate(self.entries) if bits >> n & 1]
        return chosen + [
            _entry(name, schema if isinstance(schema, Mapping) else {})
            for name, schema in self.dictionary.items()
            if name not in self.bit_of
        ]


def _entry(name: str, schema: Mapping[str, Any]) -> Variable:
    title = schema.get("title")
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = "|".join(str(k) for k in kind)
    return {
        "name": name,
        "title": title if isinstance(title, str) and title else name,
        "type": kind if isinstance(kind, str) else "",
    }


def _known_in(
    process: etree._Element,
    start_form: str | None,
    forms: Mapping[str, Any],
    dictionary: Mapping[str, Mapping[str, Any]],
) -> dict[str, list[Variable]]:
    graph = flow_graph(process)
    catalogue = _Catalogue(dictionary)
    sets = {graph.process_id: catalogue.bits(_form_fields(forms.get(start_form or "")))}
    for node_id, node in graph.nodes.items():
        sets[node_id] = catalogue.bits(dict(_set_by(node, forms)))
    before = _before(graph, sets)
    elements = [*graph.flows, *(n for n, e in graph.nodes.items() if _is_gateway(e))]
    return {element: catalogue.listed(before.get(element, 0)) for element in elements}


def _before(graph: FlowGraph, sets: Mapping[str, int]) -> dict[str, int]:
    """For each node a token may reach, the variables set on some way there: a forward
    analysis to a fixed point (loops only add what they bring round)."""
    root = graph.process_id
    before: dict[str, int] = {root: 0}
    queue = deque([root])
    while queue:
        key = queue.popleft()
        after = before[key] | sets.get(key, 0)
        for target in graph.following.get(key, ()):
            joined = before.get(target, 0) | after
            if target not in before or joined != before[target]:
                before[target] = joined
                queue.append(target)
    return before


def _is_gateway(node: etree._Element) -> bool:
    return (kind_of(node) or "").endswith("Gateway")


def _form_fields(document: Any) -> Mapping[str, Any]:
    schema = document.get("schema") if isinstance(document, Mapping) else None
    properties = schema.get("properties") if isinstance(schema, Mapping) else None
    return properties if isinstance(properties, Mapping) else {}


def _set_by(node: etree._Element, forms: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(name, schema or None) of each variable a flow node sets."""
    loop = node.find("bpmn:multiInstanceLoopCharacteristics", NS)
    output = (
        loop.findtext("bpmn:loopDataOutputRef", default="", namespaces=NS)
        if loop is not None
        else ""
    )
    if output.strip():
        yield output.strip(), None
    elif kind_of(node) == "userTask":
        yield from _form_fields(forms.get(node.get("id", ""))).items()
    for operator in node.iterfind("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS):
        if operator.get("resultVariable"):
            yield operator.get("resultVariable", ""), None
    scripts = [node.findtext("bpmn:script", default="", namespaces=NS)]
    scripts += [
        s.text or "" for s in node.iterfind("bpmn:extensionElements/*", NS) if _is_spiff_script(s)
    ]
    for script in scripts:
        yield from ((name, None) for name in _assigned(script))


def _is_spiff_script(node: etree._Element) -> bool:
    return isinstance(node.tag, str) and etree.QName(node).localname in ("preScript", "postScript")


def _assigned(script: str) -> list[str]:
    if not script.strip():
        return []
    try:
        return [name for name, _ in expressions.compile_script(script)]
    except UnsafeExpression:
        return []  # lint reports it (unsafe-expression); it sets nothing that runs
