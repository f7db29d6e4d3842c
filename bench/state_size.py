"""state_bytes_per_instance: the stored workflow state of one instance after a full
cycle, as stored (spec stripped, engine.serializer) and as SpiffWorkflow's own
serializer would store it (spec embedded)."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from sqlalchemy import select

from bench.common import (
    RuntimeDoor,
    parsed_process,
    prepared_database,
    run_cycle,
    sqlite_url,
)
from engine.audit.chain import canonical_json
from engine.persistence.models import Event, HumanTask, Instance, WorkflowState
from engine.runtime import Runtime
from engine.workflow.compaction import CsiWorkflow
from engine.workflow.serializer import StateSerializer, spiff_config
from tests.helpers.actors import actors_of


def measure() -> dict[str, Any]:
    db = prepared_database(sqlite_url("state_size"))
    try:
        actors, parsed = actors_of(db), parsed_process(db)
        door = RuntimeDoor(Runtime(db), db, actors)
        result = run_cycle(door)
        iid = result.instance_id
        with db.sessions() as session:
            state = session.get(WorkflowState, iid)
            assert state is not None
            without_spec = len(state.state.encode("utf-8"))
            workflow = StateSerializer().loads(state.state, parsed)
            config = {**spiff_config(), CsiWorkflow: SPIFF_CONFIG[BpmnWorkflow]}
            spiff = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config))
            with_spec = len(spiff.serialize_json(workflow).encode("utf-8"))
            events = list(session.scalars(select(Event).where(Event.instance_id == iid)))
            event_bytes = sum(len(canonical_json(e.payload).encode("utf-8")) for e in events)
            tasks = list(session.scalars(select(HumanTask).where(HumanTask.instance_id == iid)))
            task_data_bytes = sum(len(canonical_json(t.data).encode("utf-8")) for t in tasks)
            instance = session.get(Instance, iid)
            assert instance is not None
            data_bytes = len(canonical_json(instance.data).encode("utf-8"))
        return {
            "value": {"without_spec": without_spec, "with_spec": with_spec},
            "details": {
                "user_steps": len(door.samples.steps()),
                "workflow_tasks": len(workflow.tasks)
                + sum(len(sp.tasks) for sp in workflow.subprocesses.values()),
                "event_payload_bytes": event_bytes,
                "events": len(events),
                "human_task_rows": len(tasks),
                "human_task_data_bytes": task_data_bytes,
                "instance_data_bytes": data_bytes,
            },
        }
    finally:
        db.dispose()
