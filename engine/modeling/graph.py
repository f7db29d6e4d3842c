"""A process's flow as a graph: its flow nodes and sequence flows, and where a token may
go next from each. Lint asks it what no token can ever reach; the condition help asks
it what may have happened before a flow.

Besides the sequence flows, a token goes from a process or subprocess into its start
events (and its event subprocesses, and in an ad-hoc subprocess into every activity
nothing leads to), from a host into its boundary events, from a link throw event to
the link catch event of the same name, and out of a subprocess once a node without
outgoing flows inside it is done (`done(id)`, its way out, is a node of its own, so
that what lies inside a subprocess counts as before its outgoing flows and not
before its own start).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from lxml import etree

from engine.workflow.safe_xml import BPMN_NS, NS

TASKS = frozenset(
    {
        "task",
        "userTask",
        "serviceTask",
        "scriptTask",
        "manualTask",
        "businessRuleTask",
        "sendTask",
        "receiveTask",
        "callActivity",
    }
)
CONTAINERS = frozenset({"subProcess", "transaction", "adHocSubProcess"})
EVENTS = frozenset(
    {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"}
)


def kind_of(node: etree._Element) -> str | None:
    """The BPMN tag of a node (userTask, exclusiveGateway …), None for what is not BPMN."""
    if not isinstance(node.tag, str):
        return None
    name = etree.QName(node)
    return name.localname if name.namespace == BPMN_NS else None


def is_flow_node(kind: str | None) -> bool:
    return kind is not None and (
        kind in TASKS or kind in CONTAINERS or kind in EVENTS or kind.endswith("Gateway")
    )


def done(node_id: str) -> str:
    """The graph node a token leaves subprocess `node_id` by ('#' is in no BPMN id)."""
    return f"{node_id}#done"


@dataclass
class FlowGraph:
    process_id: str
    nodes: dict[str, etree._Element] = field(default_factory=dict)  # flow nodes by id
    flows: dict[str, etree._Element] = field(default_factory=dict)  # sequence flows by id
    parent: dict[str, str] = field(default_factory=dict)  # id -> its process or subprocess
    following: dict[str, list[str]] = field(default_factory=dict)

    def link(self, source: str, target: str) -> None:
        self.following.setdefault(source, []).append(target)

    def exit_of(self, node_id: str) -> str:
        """Where a token is once node `node_id` is done with it."""
        node = self.nodes.get(node_id)
        return done(node_id) if node is not None and kind_of(node) in CONTAINERS else node_id

    def reachable(self) -> set[str]:
        """Every node and flow a token may reach from the process's start."""
        seen = {self.process_id}
        queue = deque([self.process_id])
        while queue:
            for target in self.following.get(queue.popleft(), ()):
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        return seen

    def unreachable(self) -> list[str]:
        """Flow nodes no token can reach, in document order; inside a subprocess no
        token reaches only the subprocess itself is named."""
        reached = self.reachable()
        return [
            node_id
            for node_id in self.nodes
            if node_id not in reached and self.parent.get(node_id) in reached
        ]


def flow_graph(process: etree._Element) -> FlowGraph:
    graph = FlowGraph(process.get("id", ""))
    _add_container(graph, process, graph.process_id)
    return graph


def _add_container(graph: FlowGraph, container: etree._Element, key: str) -> None:
    children = [c for c in container if is_flow_node(kind_of(c)) and c.get("id")]
    for child in children:
        graph.nodes[child.get("id", "")] = child
        graph.parent[child.get("id", "")] = key
    leads_in: set[str] = set()
    leads_out: set[str] = set()
    for flow in container.iterfind("bpmn:sequenceFlow", NS):
        flow_id, source, target = (flow.get(a, "") for a in ("id", "sourceRef", "targetRef"))
        graph.flows[flow_id] = flow
        graph.parent[flow_id] = key
        graph.link(graph.exit_of(source), flow_id)
        graph.link(flow_id, target)
        leads_out.add(source)
        leads_in.add(target)
    ad_hoc = kind_of(container) == "adHocSubProcess"
    for child in children:
        child_id, kind = child.get("id", ""), kind_of(child)
        if kind == "boundaryEvent":
            graph.link(child.get("attachedToRef", ""), child_id)
        elif (
            kind == "startEvent"
            or (kind in CONTAINERS and child.get("triggeredByEvent") == "true")
            or (ad_hoc and child_id not in leads_in)
        ):
            graph.link(key, child_id)
        if child_id not in leads_out:
            graph.link(graph.exit_of(child_id), done(key))
        if kind in CONTAINERS:
            _add_container(graph, child, child_id)
    if not children:
        graph.link(key, done(key))
    _link_events(graph, children)


def _link_events(graph: FlowGraph, children: list[etree._Element]) -> None:
    """A link throw event continues at the link catch event of the same name."""
    catches: dict[str, list[str]] = {}
    for child in children:
        if kind_of(child) == "intermediateCatchEvent":
            for link in child.iterfind("bpmn:linkEventDefinition", NS):
                catches.setdefault(link.get("name", ""), []).append(child.get("id", ""))
    for child in children:
        if kind_of(child) == "intermediateThrowEvent":
            for link in child.iterfind("bpmn:linkEventDefinition", NS):
                for target in catches.get(link.get("name", ""), ()):
                    graph.link(child.get("id", ""), target)
