"""Small diagrams for the bundled pack, written as the body of one process: each
element with an id lies in the ImprovementOwner lane (user tasks need a role's lane,
and the lane of the start event says who may start the process). User tasks take ids
of the pack's forms (register_input, propose_metrics...)."""

from __future__ import annotations

import re

_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    id="Definitions_{pid}" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{pid}" name="{pid}" isExecutable="true">
    <bpmn:laneSet id="LaneSet_{pid}">
      <bpmn:lane id="Lane_{pid}" name="ImprovementOwner">
{refs}
      </bpmn:lane>
    </bpmn:laneSet>
"""
_TAIL = """
  </bpmn:process>
</bpmn:definitions>
"""
_NOT_IN_LANES = {
    "sequenceFlow",
    "timerEventDefinition",
    "multiInstanceLoopCharacteristics",
    "inputDataItem",
    "outputDataItem",
}


def diagram(pid: str, body: str, *flows: tuple[str, str]) -> bytes:
    """A BPMN file of one process `pid` with `body` as its elements, and a sequence flow
    for each (source, target) in `flows` (with the id `source_target`)."""
    body += "\n".join(
        f'<bpmn:sequenceFlow id="{a}_{b}" sourceRef="{a}" targetRef="{b}" />' for a, b in flows
    )
    nodes = [
        node
        for tag, node in re.findall(r'<bpmn:(\w+) id="([^"]+)"', body)
        if tag not in _NOT_IN_LANES
    ]
    refs = "\n".join(f"        <bpmn:flowNodeRef>{n}</bpmn:flowNodeRef>" for n in nodes)
    return (_HEAD.format(pid=pid, refs=refs) + body + _TAIL).encode("utf-8")
