"""Who may start a process: the role of the lane its start event lies in."""

from __future__ import annotations

from engine.access import Policy
from engine.workflow.model import read_models
from engine.workflow.safe_xml import safe_tree
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


BRANCHING = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="x">
  <bpmn:process id="branching" isExecutable="true">
    %s
    <bpmn:startEvent id="start" />
    <bpmn:scriptTask id="prepare" />
    <bpmn:exclusiveGateway id="which" />
    <bpmn:userTask id="first_a" />
    <bpmn:userTask id="first_b" />
    <bpmn:userTask id="later" />
    <bpmn:endEvent id="end" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="prepare" />
    <bpmn:sequenceFlow id="f2" sourceRef="prepare" targetRef="which" />
    <bpmn:sequenceFlow id="f3" sourceRef="which" targetRef="first_a" />
    <bpmn:sequenceFlow id="f4" sourceRef="which" targetRef="first_b" />
    <bpmn:sequenceFlow id="f5" sourceRef="first_a" targetRef="later" />
    <bpmn:sequenceFlow id="f6" sourceRef="first_b" targetRef="which" />
    <bpmn:sequenceFlow id="f7" sourceRef="later" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
DECLARED = b"""<bpmn:extensionElements><spiffworkflow:properties>
      <spiffworkflow:property name="start_form" value="intake" />
    </spiffworkflow:properties></bpmn:extensionElements>"""


def test_the_start_forms_are_those_of_the_first_user_tasks_on_every_path() -> None:
    model = read_models(safe_tree(BRANCHING % b""))["branching"]
    assert model.first_tasks == ("first_a", "first_b")
    assert model.start_forms == ("first_a", "first_b")
    assert bundled_parsed().models["service_improvement"].start_forms == ("register_input",)


def test_a_process_may_declare_its_start_form() -> None:
    model = read_models(safe_tree(BRANCHING % DECLARED))["branching"]
    assert model.start_forms == ("intake",)
