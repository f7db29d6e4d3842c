"""Workflow state <-> JSON, without the spec.

SpiffWorkflow's serializer embeds the whole spec (~27 KB) in every workflow and
rebuilds spec objects on every load. A definition version is immutable and parsed
once per process (engine.specs), so the state we store leaves the spec out and a
load reattaches the already-parsed spec objects.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnWorkflowConverter,
    WorkflowConverter,
)
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from engine.workflow.bounds import BOUNDED
from engine.workflow.compaction import CsiWorkflow
from engine.workflow.parsing import ParsedSpecs

STATE_FORMAT = "csi-state-1"


class _SpeclessWorkflowConverter(BpmnWorkflowConverter):
    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct: dict[str, Any] = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        dct["dropped_elements"] = list(getattr(workflow, "dropped_elements", []))
        dct["dropped_flows"] = list(getattr(workflow, "dropped_flows", []))
        return dct

    def from_dict(self, dct: dict[str, Any], **kwargs: Any) -> BpmnWorkflow:
        parsed: ParsedSpecs = kwargs["parsed"]
        workflow = CsiWorkflow(parsed.spec, parsed.subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        workflow.dropped_elements = list(dct.get("dropped_elements") or [])
        workflow.dropped_flows = list(dct.get("dropped_flows") or [])
        return workflow


def spiff_config() -> dict[Any, Any]:
    """SpiffWorkflow's serializer configuration, with the engine's spec classes
    (engine.workflow.bounds) converted like the classes they extend."""
    config = dict(SPIFF_CONFIG)
    for spiff_class, bounded in BOUNDED.items():
        config[bounded] = config[spiff_class]
    return config


class StateSerializer:
    """Built once per app; stateless afterwards, so threads may share it."""

    def __init__(self) -> None:
        config = spiff_config()
        config[BpmnWorkflow] = _SpeclessWorkflowConverter
        config[CsiWorkflow] = _SpeclessWorkflowConverter
        self._serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))

    @property
    def registry(self) -> Any:
        """The converter registry, which SpiffWorkflow's spec diff compares specs with."""
        return self._serializer.registry

    def dumps(self, workflow: BpmnWorkflow) -> str:
        dct = self._serializer.to_dict(workflow)
        dct["format"] = STATE_FORMAT
        return json.dumps(dct, separators=(",", ":"), ensure_ascii=False)

    def loads(self, state: str, parsed: ParsedSpecs) -> BpmnWorkflow:
        dct = json.loads(state)
        if dct.pop("format", None) != STATE_FORMAT:
            raise ValueError("unknown workflow state format")
        workflow: BpmnWorkflow = self._serializer.from_dict(dct, parsed=parsed)
        return workflow
