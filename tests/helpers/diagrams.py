"""Small diagrams for the bundled pack, written as the body of one process: each
element with an id lies in the ImprovementOwner lane (user tasks need a role's lane,
and the lane of the start event says who may start the process). User tasks take ids
of the pack's forms (register_input, propose_metrics...). And edits of a diagram's
XML, as a modeler would make them: a task cut out, a task put in."""

from __future__ import annotations

import re

from lxml import etree

from engine.workflow.safe_xml import BPMN_NS

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


_EDIT_NS = {"bpmn": BPMN_NS, "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}


def _process_of(tree: etree._Element, element_id: str) -> etree._Element:
    for process in tree.iterfind("bpmn:process", _EDIT_NS):
        if process.find(f"*[@id='{element_id}']") is not None:
            return process
    raise KeyError(element_id)


def _drop_shapes(tree: etree._Element, ids: set[str]) -> None:
    for shape in [
        *tree.iterfind(".//bpmndi:BPMNShape", _EDIT_NS),
        *tree.iterfind(".//bpmndi:BPMNEdge", _EDIT_NS),
    ]:
        if shape.get("bpmnElement") in ids:
            shape.getparent().remove(shape)


def without_task(xml: str, task_id: str) -> str:
    """The diagram with `task_id` (one flow in, one out) cut out: the flow into it leads
    straight on to where it led."""
    tree = etree.fromstring(xml.encode("utf-8"))
    process = _process_of(tree, task_id)
    task = process.find(f"*[@id='{task_id}']")
    incoming = task.find("bpmn:incoming", _EDIT_NS).text
    outgoing = task.find("bpmn:outgoing", _EDIT_NS).text
    flow_in = process.find(f"bpmn:sequenceFlow[@id='{incoming}']", _EDIT_NS)
    flow_out = process.find(f"bpmn:sequenceFlow[@id='{outgoing}']", _EDIT_NS)
    target = flow_out.get("targetRef")
    flow_in.set("targetRef", target)
    for ref in process.find(f"*[@id='{target}']").findall("bpmn:incoming", _EDIT_NS):
        if ref.text == outgoing:
            ref.text = incoming
    process.remove(task)
    process.remove(flow_out)
    for ref in process.iterfind(".//bpmn:flowNodeRef", _EDIT_NS):
        if ref.text == task_id:
            ref.getparent().remove(ref)
    _drop_shapes(tree, {task_id, outgoing})
    return etree.tostring(tree, encoding="unicode")


def with_task_before(xml: str, before: str, new_id: str, element: str) -> str:
    """The diagram with `element` (the XML of one flow node with the id `new_id`, in the
    lane of `before`) on the one flow into `before`."""
    tree = etree.fromstring(xml.encode("utf-8"))
    process = _process_of(tree, before)
    target = process.find(f"*[@id='{before}']")
    incoming = target.find("bpmn:incoming", _EDIT_NS)
    flow_in = process.find(f"bpmn:sequenceFlow[@id='{incoming.text}']", _EDIT_NS)
    flow_in.set("targetRef", new_id)
    node = etree.fromstring(f'<bpmn:root xmlns:bpmn="{BPMN_NS}">{element}</bpmn:root>'.encode())[0]
    new_flow = f"Flow_{new_id}_to_{before}"
    node.append(_bpmn("incoming", incoming.text))
    node.append(_bpmn("outgoing", new_flow))
    incoming.text = new_flow
    process.append(node)
    flow = _bpmn("sequenceFlow")
    flow.attrib.update({"id": new_flow, "sourceRef": new_id, "targetRef": before})
    process.append(flow)
    for ref in process.iterfind(".//bpmn:flowNodeRef", _EDIT_NS):
        if ref.text == before:
            ref.addnext(_bpmn("flowNodeRef", new_id))
    return etree.tostring(tree, encoding="unicode")


def _bpmn(tag: str, text: str | None = None) -> etree._Element:
    node = etree.Element(f"{{{BPMN_NS}}}{tag}")
    node.text = text
    return node


# A step the procedure gains in the publication tests: preparing the management review
# materials (seed 2.3), with its form.
NEW_TASK = "prepare_review_materials"
NEW_TASK_XML = (
    f'<bpmn:userTask id="{NEW_TASK}" name="准备管理评审材料">'
    "<bpmn:extensionElements>"
    '<spiffworkflow:properties xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core">'
    '<spiffworkflow:property name="due_in" value="P2D" />'
    "</spiffworkflow:properties>"
    "</bpmn:extensionElements>"
    "</bpmn:userTask>"
)
NEW_FORM = {
    "title": {"zh-CN": "准备管理评审材料", "en": "Prepare the management review materials"},
    "description": {"zh-CN": "汇总本期改进情况。", "en": "Summarise this period's improvements."},
    "schema": {
        "type": "object",
        "properties": {
            "summary": {
                "title": "材料摘要",
                "x-title-en": "Summary",
                "type": "string",
                "maxLength": 2000,
                "x-widget": "textarea",
            }
        },
        "required": ["summary"],
        "additionalProperties": False,
    },
}
