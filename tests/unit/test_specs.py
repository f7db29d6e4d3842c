"""Who may start a process: the role of the lane its start event lies in."""

from __future__ import annotations

from engine.access import Policy
from procedure import PACK
from tests.helpers.specs import bundled_parsed, parsed_from

LANELESS = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="plain" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f1</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_the_start_events_lane_says_who_starts() -> None:
    model = bundled_parsed("service_improvement").models["service_improvement"]
    assert Policy(PACK.roles).starter_roles(model.starter_lanes) == {"ImprovementOwner"}


def test_a_start_event_in_no_lane_lets_anyone_who_may_write_start() -> None:
    model = parsed_from("plain", [("plain", LANELESS)]).models["plain"]
    assert Policy(PACK.roles).starter_roles(model.starter_lanes) == frozenset()
