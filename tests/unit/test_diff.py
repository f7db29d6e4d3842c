"""The semantic diff between a deployed version and a draft: what the review page lists
and the modeler colours. Layout is never a change; every semantic edit is, under the
name of the property it touches."""

from __future__ import annotations

import json
import re

import pytest

from engine.errors import ValidationFailed
from engine.modeling.diff import ModelDiff, diff
from procedure import PACK

# A small executable diagram as a modeler saves it: two lanes, a user task, a gateway
# with a conditional and a default flow, a service task, a timer, and its layout.
BASE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
    xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
    xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    id="Definitions_small" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:collaboration id="Collaboration_small">
    <bpmn:participant id="Pool_small" name="Small" processRef="small" />
  </bpmn:collaboration>
  <bpmn:process id="small" name="Small" isExecutable="true">
    <bpmn:laneSet id="LaneSet_small">
      <bpmn:lane id="Lane_owner" name="ImprovementOwner">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>review</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>decide</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
      </bpmn:lane>
      <bpmn:lane id="Lane_manager" name="ImprovementManager">
        <bpmn:flowNodeRef>compute</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>wait</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start" name="Start">
      <bpmn:outgoing>f_start</bpmn:outgoing>
    </bpmn:startEvent>
    <bpmn:userTask id="review" name="Review">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="due_in" value="P2D" />
          <spiffworkflow:property name="name_en" value="Review" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f_start</bpmn:incoming>
      <bpmn:outgoing>f_review</bpmn:outgoing>
      <bpmn:multiInstanceLoopCharacteristics isSequential="false">
        <bpmn:loopDataInputRef>owners</bpmn:loopDataInputRef>
        <bpmn:inputDataItem id="owner" name="owner" />
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="decide" name="Decision?" default="f_no">
      <bpmn:incoming>f_review</bpmn:incoming>
      <bpmn:outgoing>f_yes</bpmn:outgoing>
      <bpmn:outgoing>f_no</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:serviceTask id="compute" name="Compute">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="csi/compute_gaps" resultVariable="gaps">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="metrics" type="any" value="metrics" />
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>f_yes</bpmn:incoming>
      <bpmn:outgoing>f_compute</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:intermediateCatchEvent id="wait" name="Wait">
      <bpmn:incoming>f_compute</bpmn:incoming>
      <bpmn:outgoing>f_wait</bpmn:outgoing>
      <bpmn:timerEventDefinition id="TimerEventDefinition_1x2y3z">
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"P1D"</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="end" name="End">
      <bpmn:incoming>f_no</bpmn:incoming>
      <bpmn:incoming>f_wait</bpmn:incoming>
    </bpmn:endEvent>
    <bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="review" />
    <bpmn:sequenceFlow id="f_review" sourceRef="review" targetRef="decide" />
    <bpmn:sequenceFlow id="f_yes" name="yes" sourceRef="decide" targetRef="compute">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">decision == 'yes'</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_no" name="no" sourceRef="decide" targetRef="end" />
    <bpmn:sequenceFlow id="f_compute" sourceRef="compute" targetRef="wait" />
    <bpmn:sequenceFlow id="f_wait" sourceRef="wait" targetRef="end" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="Diagram_small">
    <bpmndi:BPMNPlane id="Plane_small" bpmnElement="Collaboration_small">
      <bpmndi:BPMNShape id="Pool_small_di" bpmnElement="Pool_small" isHorizontal="true">
        <dc:Bounds x="100" y="60" width="900" height="400" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="start_di" bpmnElement="start">
        <dc:Bounds x="170" y="142" width="36" height="36" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="review_di" bpmnElement="review">
        <dc:Bounds x="260" y="120" width="100" height="80" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="decide_di" bpmnElement="decide" isMarkerVisible="true">
        <dc:Bounds x="415" y="135" width="50" height="50" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="compute_di" bpmnElement="compute">
        <dc:Bounds x="520" y="320" width="100" height="80" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="wait_di" bpmnElement="wait">
        <dc:Bounds x="680" y="342" width="36" height="36" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="end_di" bpmnElement="end">
        <dc:Bounds x="800" y="142" width="36" height="36" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="f_start_di" bpmnElement="f_start">
        <di:waypoint x="206" y="160" />
        <di:waypoint x="260" y="160" />
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f_review_di" bpmnElement="f_review">
        <di:waypoint x="360" y="160" />
        <di:waypoint x="415" y="160" />
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f_yes_di" bpmnElement="f_yes">
        <di:waypoint x="440" y="185" />
        <di:waypoint x="440" y="360" />
        <di:waypoint x="520" y="360" />
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f_no_di" bpmnElement="f_no">
        <di:waypoint x="465" y="160" />
        <di:waypoint x="800" y="160" />
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""

SERVICE_IMPROVEMENT = (PACK.files / "service_improvement.bpmn").read_bytes()


def edited(*replacements: tuple[str, str], base: str = BASE) -> bytes:
    """`base` with each (old, new) replaced, every old text present exactly once."""
    for old, new in replacements:
        assert base.count(old) == 1, old
        base = base.replace(old, new)
    return base.encode("utf-8")


def base_diff(*replacements: tuple[str, str]) -> ModelDiff:
    return diff(BASE.encode(), {}, edited(*replacements), {})


def changed_properties(result: ModelDiff) -> dict[str, list[str]]:
    return {c.element: list(c.properties) for c in result.changed}


def test_identical_diagrams_differ_in_nothing() -> None:
    result = diff(SERVICE_IMPROVEMENT, {}, SERVICE_IMPROVEMENT, {}, "service_improvement")

    assert result.empty
    assert result.as_json() == {
        "added": [],
        "removed": [],
        "changed": [],
        "forms_changed": [],
        "summary": {"added": 0, "removed": 0, "changed": 0, "forms_changed": 0, "changes": 0},
        "changes": [],
    }


def test_moving_shapes_and_bending_edges_is_no_change() -> None:
    shifted = re.sub(
        r'( (?:x|y)=")(\d+)"', lambda m: f'{m.group(1)}{int(m.group(2)) + 37}"', BASE
    ).replace(
        '<di:waypoint x="477" y="397" />',
        '<di:waypoint x="477" y="397" /><di:waypoint x="480" y="397" />',
    )
    assert shifted != BASE

    assert diff(BASE.encode(), {}, shifted.encode(), {}).empty


def test_the_bundled_diagram_laid_out_anew_is_no_change() -> None:
    text = SERVICE_IMPROVEMENT.decode()
    moved = re.sub(r'<dc:Bounds x="(\d+)"', lambda m: f'<dc:Bounds x="{int(m[1]) * 2}"', text)
    assert moved != text

    assert diff(SERVICE_IMPROVEMENT, {}, moved.encode(), {}).empty


# A user task inserted on the flow start -> review, in the owner's lane, as bpmn-js
# does it: the flow now ends at the new task, a new flow leads on to review.
INSERTED = (
    (
        "<bpmn:flowNodeRef>start</bpmn:flowNodeRef>",
        "<bpmn:flowNodeRef>start</bpmn:flowNodeRef>\n<bpmn:flowNodeRef>prepare</bpmn:flowNodeRef>",
    ),
    # review's incoming flow is now the new one
    ("<bpmn:incoming>f_start</bpmn:incoming>", "<bpmn:incoming>f_prepare</bpmn:incoming>"),
    (
        '<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="review" />',
        '<bpmn:sequenceFlow id="f_start" sourceRef="start" targetRef="prepare" />\n'
        '<bpmn:sequenceFlow id="f_prepare" sourceRef="prepare" targetRef="review" />\n'
        '<bpmn:userTask id="prepare" name="Prepare">'
        "<bpmn:incoming>f_start</bpmn:incoming><bpmn:outgoing>f_prepare</bpmn:outgoing>"
        "</bpmn:userTask>",
    ),
    (
        '<bpmndi:BPMNShape id="review_di"',
        '<bpmndi:BPMNShape id="prepare_di" bpmnElement="prepare">'
        '<dc:Bounds x="230" y="220" width="100" height="80" /></bpmndi:BPMNShape>\n'
        '<bpmndi:BPMNShape id="review_di"',
    ),
)


def test_an_added_user_task_lists_it_and_its_new_flow_and_only_the_rerouted_flow_as_changed() -> (
    None
):
    result = base_diff(*INSERTED)

    assert set(result.added) == {"prepare", "f_prepare"}
    assert result.removed == ()
    # review's incoming flow and the lane's node list changed in the XML: neither is
    # a change of review or of the lane, only of the flow that now ends elsewhere.
    assert changed_properties(result) == {"f_start": ["targetRef"]}
    assert result.changed[0].old == {"targetRef": "review"}
    assert result.changed[0].new == {"targetRef": "prepare"}


def test_a_removed_user_task_lists_it_and_its_flow_as_removed() -> None:
    result = diff(edited(*INSERTED), {}, BASE.encode(), {})

    assert set(result.removed) == {"prepare", "f_prepare"}
    assert result.added == ()
    assert changed_properties(result) == {"f_start": ["targetRef"]}


@pytest.mark.parametrize(
    ("edit", "element", "properties", "kind"),
    [
        pytest.param(
            ('name="Review"', 'name="Review the plan"'), "review", ["name"], "renamed", id="name"
        ),
        pytest.param(
            ("decision == 'yes'", "decision in ('yes', 'maybe')"),
            "f_yes",
            ["condition"],
            "condition",
            id="condition",
        ),
        pytest.param(
            ('name="due_in" value="P2D"', 'name="due_in" value="P5D"'),
            "review",
            ["due_in"],
            "property",
            id="due_in",
        ),
        pytest.param(
            ('id="csi/compute_gaps"', 'id="csi/assign_rfc"'),
            "compute",
            ["operator"],
            "service",
            id="service-operator",
        ),
        pytest.param(
            ('value="metrics" />', 'value="metrics[:3]" />'),
            "compute",
            ["parameter:metrics"],
            "service",
            id="service-parameter",
        ),
        pytest.param(
            ('default="f_no"', 'default="f_yes"'),
            "decide",
            ["default"],
            "default_flow",
            id="default-flow",
        ),
        pytest.param(
            ('"P1D"</bpmn:timeDuration>', '"P3D"</bpmn:timeDuration>'),
            "wait",
            ["timer"],
            "event_definition",
            id="timer",
        ),
        pytest.param(
            ('isSequential="false"', 'isSequential="true"'),
            "review",
            ["multi_instance"],
            "multi_instance",
            id="multi-instance",
        ),
        pytest.param(
            (
                '<bpmn:userTask id="review" name="Review">',
                '<bpmn:userTask id="review" name="Review">'
                "<bpmn:documentation>Check the plan.</bpmn:documentation>",
            ),
            "review",
            ["documentation"],
            "documentation",
            id="documentation",
        ),
        pytest.param(
            ('<spiffworkflow:property name="name_en" value="Review" />', ""),
            "review",
            ["name_en"],
            "property",
            id="property-removed",
        ),
    ],
)
def test_each_semantic_edit_is_listed_under_the_property_it_touches(
    edit: tuple[str, str], element: str, properties: list[str], kind: str
) -> None:
    result = base_diff(edit)

    assert result.added == result.removed == ()
    assert changed_properties(result) == {element: properties}
    assert [c.kind for c in result.changes] == [kind]


def test_a_task_moved_to_another_lane_changes_the_task_not_the_lanes() -> None:
    result = base_diff(
        ("<bpmn:flowNodeRef>review</bpmn:flowNodeRef>\n", ""),
        (
            "<bpmn:flowNodeRef>wait</bpmn:flowNodeRef>",
            "<bpmn:flowNodeRef>wait</bpmn:flowNodeRef><bpmn:flowNodeRef>review</bpmn:flowNodeRef>",
        ),
    )

    assert changed_properties(result) == {"review": ["lane"]}
    (change,) = result.changes
    assert (change.kind, change.old, change.new) == ("lane", "Lane_owner", "Lane_manager")
    assert change.description == (
        "user task Review (review): lane changed from ImprovementOwner (Lane_owner)"
        " to ImprovementManager (Lane_manager)"
    )


def test_a_task_moved_between_nested_lanes_changes_its_innermost_lane() -> None:
    # A modeler lists a node in its lane and in every lane around it.
    nested = edited(
        (
            "<bpmn:flowNodeRef>end</bpmn:flowNodeRef>",
            "<bpmn:flowNodeRef>end</bpmn:flowNodeRef>"
            '<bpmn:childLaneSet id="LaneSet_owner">'
            '<bpmn:lane id="Lane_first"><bpmn:flowNodeRef>review</bpmn:flowNodeRef></bpmn:lane>'
            '<bpmn:lane id="Lane_second" /></bpmn:childLaneSet>',
        )
    ).decode()
    moved = edited(
        (
            '<bpmn:lane id="Lane_second" />',
            '<bpmn:lane id="Lane_second"><bpmn:flowNodeRef>review</bpmn:flowNodeRef></bpmn:lane>',
        ),
        (
            '<bpmn:lane id="Lane_first"><bpmn:flowNodeRef>review</bpmn:flowNodeRef></bpmn:lane>',
            '<bpmn:lane id="Lane_first" />',
        ),
        base=nested,
    )

    result = diff(nested.encode(), {}, moved, {})

    assert changed_properties(result) == {"review": ["lane"]}
    assert (result.changed[0].old, result.changed[0].new) == (
        {"lane": "Lane_first"},
        {"lane": "Lane_second"},
    )


def test_a_task_that_becomes_a_service_task_changes_its_type() -> None:
    result = base_diff(
        (
            '<bpmn:userTask id="review" name="Review">',
            '<bpmn:serviceTask id="review" name="Review">',
        ),
        ("</bpmn:userTask>", "</bpmn:serviceTask>"),
    )

    assert changed_properties(result) == {"review": ["type"]}
    assert (result.changed[0].old, result.changed[0].new) == (
        {"type": "userTask"},
        {"type": "serviceTask"},
    )


def test_a_regenerated_event_definition_id_is_no_change() -> None:
    assert base_diff(('id="TimerEventDefinition_1x2y3z"', 'id="TimerEventDefinition_9q8r"')).empty


def test_an_extension_property_named_like_another_property_is_told_apart() -> None:
    # The extension elements come before the condition in the XML: the property
    # must not take the condition's name, whatever the order.
    result = base_diff(
        (
            'targetRef="compute">',
            'targetRef="compute"><bpmn:extensionElements><spiffworkflow:properties>'
            '<spiffworkflow:property name="condition" value="shadow" />'
            "</spiffworkflow:properties></bpmn:extensionElements>",
        )
    )

    assert changed_properties(result) == {"f_yes": ["property:condition"]}


FORM = {
    "title": {"zh-CN": "审核", "en": "Review"},
    "schema": {"type": "object", "properties": {"decision": {"type": "string", "maxLength": 10}}},
}


def test_forms_added_removed_and_changed_are_listed_sorted_and_key_order_is_no_change() -> None:
    reordered = json.loads(json.dumps(FORM, sort_keys=True))
    reordered = dict(reversed(list(reordered.items())))
    longer = json.loads(json.dumps(FORM))
    longer["schema"]["properties"]["decision"]["maxLength"] = 20
    old = {"review": FORM, "gone": FORM, "same": FORM}
    new = {"review": longer, "same": reordered, "new": FORM}

    result = diff(BASE.encode(), old, BASE.encode(), new)

    assert result.forms_changed == ("gone", "new", "review")
    assert [(c.kind, c.element) for c in result.changes] == [
        ("form_removed", "gone"),
        ("form_added", "new"),
        ("form_changed", "review"),
    ]
    assert result.changes[2].description == "form of review changed (schema)"
    assert result.as_json()["forms_changed"] == ["gone", "new", "review"]


def test_the_bundled_diagram_with_one_edit_shows_that_edit_alone() -> None:
    forms = {
        f.name.removesuffix(".json"): json.loads(f.read_text("utf-8"))
        for f in PACK.forms_dir.iterdir()
        if f.name.endswith(".json")
    }
    one_edit = SERVICE_IMPROVEMENT.replace(
        b'<spiffworkflow:property name="due_in" value="P2D" />',
        b'<spiffworkflow:property name="due_in" value="P4D" />',
    )
    assert one_edit.count(b'value="P4D"') == 1

    result = diff(SERVICE_IMPROVEMENT, forms, one_edit, forms, "service_improvement")

    assert result.as_json() | {"changes": None} == {
        "added": [],
        "removed": [],
        "changed": [
            {
                "element": "review_plan",
                "type": "userTask",
                "properties": ["due_in"],
                "kinds": {"due_in": "property"},
                "old": {"due_in": "P2D"},
                "new": {"due_in": "P4D"},
            }
        ],
        "forms_changed": [],
        "summary": {"added": 0, "removed": 0, "changed": 1, "forms_changed": 0, "changes": 1},
        "changes": None,
    }
    assert [c.description for c in result.changes] == [
        'user task 审核改进方案 (review_plan): due_in changed from "P2D" to "P4D"'
    ]


def test_added_and_removed_elements_are_described_by_type_and_name() -> None:
    result = base_diff(*INSERTED)

    assert {c.element: (c.kind, c.description) for c in result.changes} == {
        "prepare": ("added", "added user task Prepare (prepare)"),
        "f_prepare": ("added", "added sequence flow f_prepare"),
        "f_start": (
            "reconnected",
            "sequence flow f_start: targetRef changed from Review (review) to Prepare (prepare)",
        ),
    }


TWO_PROCESSES = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="main" isExecutable="true">
    <bpmn:startEvent id="main_start" name="{main}" />
  </bpmn:process>
  <bpmn:process id="other" isExecutable="true">
    <bpmn:startEvent id="other_start" name="{other}" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_process_id_limits_the_diff_to_that_process() -> None:
    old = TWO_PROCESSES.format(main="a", other="a").encode()
    new = TWO_PROCESSES.format(main="a", other="b").encode()

    assert diff(old, {}, new, {}, "main").empty
    assert changed_properties(diff(old, {}, new, {}, "other")) == {"other_start": ["name"]}
    assert changed_properties(diff(old, {}, new, {})) == {"other_start": ["name"]}


@pytest.mark.parametrize(
    "hostile",
    [
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><d>&e;</d>',
        b"<bpmn:definitions",
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" />',
    ],
    ids=["entity", "not-xml", "not-bpmn"],
)
def test_a_draft_that_is_no_safe_bpmn_is_refused(hostile: bytes) -> None:
    with pytest.raises(ValidationFailed):
        diff(BASE.encode(), {}, hostile, {})


@pytest.mark.parametrize(
    ("old", "new", "element", "properties"),
    [
        (
            b"<bpmn:script>change_outcomes = []",
            b"<bpmn:script>change_outcomes = ()",
            "prepare_changes",
            ["script"],
        ),
        (
            b'calledElement="change_management"',
            b'calledElement="change_control"',
            "implement_measures",
            ["calledElement"],
        ),
        (
            b"<bpmn:loopDataInputRef>metric_owners",
            b"<bpmn:loopDataInputRef>process_owners",
            "collect_data",
            ["multi_instance"],
        ),
        (
            b'resultVariable="gaps"',
            b'resultVariable="gap_table"',
            "compute_gaps",
            ["result_variable"],
        ),
        (
            b'<bpmn:property id="measures" name="measures" />',
            b"",
            "service_improvement",
            ["data_properties"],
        ),
        (
            b'value="Prepare changes"',
            b'value="Prepare the changes"',
            "prepare_changes",
            ["name_en"],
        ),
    ],
    ids=["script", "called-element", "loop-input", "result-variable", "data-property", "name_en"],
)
def test_edits_of_the_bundled_diagram_name_their_property(
    old: bytes, new: bytes, element: str, properties: list[str]
) -> None:
    assert SERVICE_IMPROVEMENT.count(old) == 1
    edit = SERVICE_IMPROVEMENT.replace(old, new)

    result = diff(SERVICE_IMPROVEMENT, {}, edit, {}, "service_improvement")

    assert changed_properties(result) == {element: properties}


def test_data_objects_and_annotations_are_elements() -> None:
    result = base_diff(
        (
            '<bpmn:endEvent id="end" name="End">',
            '<bpmn:dataObject id="plan" name="Plan" />'
            '<bpmn:dataObjectReference id="plan_ref" dataObjectRef="plan" />'
            '<bpmn:textAnnotation id="note"><bpmn:text>Ask first</bpmn:text></bpmn:textAnnotation>'
            '<bpmn:endEvent id="end" name="End">',
        )
    )

    assert result.added == ("plan", "plan_ref", "note")
    assert [c.description for c in result.changes] == [
        "added data object Plan (plan)",
        "added data object reference plan_ref",
        "added text annotation note",
    ]
