"""Who may start a process: the role of the lane its start event lies in."""

from __future__ import annotations

from engine.access import Policy
from engine.persistence.models import ProcessDefinition
from engine.workflow import parsing, safe_xml
from procedure import PACK

LANELESS = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="plain" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def parsed_from(process_id: str, files: list[tuple[str, bytes]]) -> parsing.ParsedSpecs:
    """Parsed specs of (process id, XML) files, without a database."""
    rows = [
        ProcessDefinition(
            id=n,
            process_id=name,
            version=1,
            content_hash=safe_xml.content_hash(xml),
            bpmn_xml=xml.decode("utf-8"),
            filename=f"{name}.bpmn",
        )
        for n, (name, xml) in enumerate(files, start=9000)
    ]
    return parsing.parsed_specs(process_id, rows)


def test_the_start_events_lane_says_who_starts() -> None:
    files = [(f.name[:-5], f.read_bytes()) for f in PACK.diagram_files()]
    model = parsed_from("service_improvement", files).models["service_improvement"]
    assert Policy(PACK.roles).starter_roles(model.starter_lanes) == {"ImprovementOwner"}


def test_a_start_event_in_no_lane_lets_anyone_who_may_write_start() -> None:
    model = parsed_from("plain", [("plain", LANELESS)]).models["plain"]
    assert Policy(PACK.roles).starter_roles(model.starter_lanes) == frozenset()
