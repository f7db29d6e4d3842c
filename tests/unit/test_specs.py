"""Who may start a process: the role of the lane its start event lies in."""

from __future__ import annotations

from engine import specs
from engine.store import ProcessDefinition

LANELESS = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="plain" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def parsed_from(process_id: str, files: list[tuple[str, bytes]]) -> specs.ParsedSpecs:
    """Parsed specs of (process id, XML) files, without a database."""
    rows = [
        ProcessDefinition(
            id=n,
            process_id=name,
            version=1,
            content_hash=specs.content_hash(xml),
            bpmn_xml=xml.decode("utf-8"),
            filename=f"{name}.bpmn",
        )
        for n, (name, xml) in enumerate(files, start=9000)
    ]
    return specs.parsed_specs(process_id, rows)


def test_the_start_events_lane_says_who_starts() -> None:
    files = [(p.stem, p.read_bytes()) for p in specs.bundled_files()]
    assert parsed_from("service_improvement", files).starter_roles == {"ImprovementOwner"}


def test_a_start_event_in_no_lane_lets_anyone_who_may_write_start() -> None:
    assert parsed_from("plain", [("plain", LANELESS)]).starter_roles == frozenset()
