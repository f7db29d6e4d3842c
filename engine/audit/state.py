"""The stored workflow state against the log.

A command loads an instance from its snapshot (`workflow_state`), which records the
seq of the event it reflects. The command that wrote it recorded a checkpoint of the
state it left (`after`: open tasks, timers, completion and a digest of the data) in
its main event, so a snapshot can be checked cheaply: read it, and compare what it
holds with that checkpoint. Verify does that for every instance and a command before
it trusts a snapshot; replay, which rebuilds the state from the events anyway,
compares the snapshot with what it rebuilt, element by element and task by task.

A snapshot that fails either check is refused, never used: `csi replay --repair ID`
rebuilds it from the log (a `state_repaired` event in the chain says who did, when,
and what was wrong).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.audit import chain
from engine.audit.mismatch import Mismatch
from engine.errors import DamagedState
from engine.persistence import instances
from engine.persistence.models import Event, Instance, readable
from engine.workflow import definitions, stepping
from engine.workflow.parsing import ParsedSpecs
from engine.workflow.serializer import StateSerializer

# The events that move a workflow; each records the checkpoint of the state it left.
COMMAND_EVENTS = frozenset(
    {"instance_started", "task_completed", "timer_fired", "instance_migrated"}
)
REPAIRED = "state_repaired"  # a snapshot rebuilt from the log; records its checkpoint too
CHECKPOINTED = COMMAND_EVENTS | {REPAIRED}
# What a checkpoint vouches for, in the order a difference is named, and its name.
CHECKPOINT_KEYS = {
    "open_tasks": "open tasks",
    "completed": "completion",
    "timers": "timers",
    "data_sha256": "data",
}
TABLE = "workflow_state"  # how a mismatch names the stored state

_CHECKPOINT_AT = (
    select(Event)
    .where(
        Event.instance_id == bindparam("instance_id"),
        Event.seq <= bindparam("seq"),
        Event.type.in_(sorted(CHECKPOINTED)),
    )
    .order_by(Event.seq.desc())
    .limit(1)
)


@cache
def shared_serializer() -> StateSerializer:
    """For readers, which have no command context of their own; stateless once built."""
    return StateSerializer()


def first_difference(recorded: Mapping[str, Any], actual: Mapping[str, Any]) -> str | None:
    """The first checkpoint key whose values differ, if any."""
    for key in CHECKPOINT_KEYS:
        if recorded.get(key) != actual.get(key):
            return key
    return None


@dataclass(frozen=True)
class StateProblem:
    """What is wrong with an instance's stored state, and the seq it claims to reflect."""

    instance_id: int
    seq: int | None
    message: str

    def message_with_remedy(self) -> str:
        return (
            f"the stored state of instance {self.instance_id} cannot be used: {self.message}; "
            f"rebuild it from its history with `csi replay --repair {self.instance_id}`"
        )

    def error(self) -> DamagedState:
        return DamagedState(
            self.message_with_remedy(),
            reason="state_damaged",
            params={"instance": self.instance_id},
        )


@dataclass
class Snapshot:
    """A stored state that reads, and the seq of the event it reflects."""

    seq: int
    workflow: BpmnWorkflow
    parsed: ParsedSpecs


def read_snapshot(
    session: Session, instance: Any, serializer: StateSerializer | None = None
) -> Snapshot | StateProblem:
    """The instance's stored state as a workflow (on the definitions its row pins), or
    why it cannot be read. `instance`: anything with id, last_seq, definition_id and
    called_definitions."""
    stored = instances.stored_state(session, instance.id)
    if stored is None:
        return StateProblem(instance.id, None, "there is no stored state")
    seq, text = stored
    if not isinstance(seq, int) or not 1 <= seq <= instance.last_seq:
        return StateProblem(
            instance.id, seq, f"it claims event {seq}, which the chain does not hold"
        )
    try:
        parsed = definitions.spec_for_instance(
            session, instance.definition_id, dict(instance.called_definitions or {})
        )
        workflow = (serializer or shared_serializer()).loads(text, parsed)
    except Exception as exc:  # whatever the text is now, it is no state we wrote
        return StateProblem(instance.id, seq, f"it cannot be read ({type(exc).__name__})")
    return Snapshot(seq, workflow, parsed)


def check_against_checkpoint(
    session: Session, instance_id: int, snapshot: Snapshot
) -> StateProblem | None:
    """Compare a snapshot with the checkpoint of the event it reflects (the newest event
    up to its seq that records one)."""
    event = session.scalar(_CHECKPOINT_AT, {"instance_id": instance_id, "seq": snapshot.seq})
    if event is None or not readable(event.payload):
        return StateProblem(
            instance_id, snapshot.seq, f"no readable checkpoint up to event {snapshot.seq}"
        )
    recorded = event.payload.get("after")
    if not isinstance(recorded, dict):
        return StateProblem(instance_id, snapshot.seq, f"event {event.seq} records no checkpoint")
    try:
        seen = stepping.observe(snapshot.workflow)
    except Exception as exc:
        return StateProblem(instance_id, snapshot.seq, f"it cannot be read ({type(exc).__name__})")
    recorded = {**recorded, "open_tasks": sorted(recorded.get("open_tasks") or [])}
    key = first_difference(recorded, seen.checkpoint({}))
    if key is not None:
        return StateProblem(
            instance_id,
            snapshot.seq,
            f"it differs from the checkpoint of event {event.seq} in its {CHECKPOINT_KEYS[key]}",
        )
    return None


def load_checked(
    session: Session, instance: Any, serializer: StateSerializer | None = None
) -> Snapshot:
    """The stored state a command may build on; DamagedState when it cannot be read or
    is not the state its event left."""
    snapshot = read_snapshot(session, instance, serializer)
    if isinstance(snapshot, StateProblem):
        raise snapshot.error()
    problem = check_against_checkpoint(session, instance.id, snapshot)
    if problem is not None:
        raise problem.error()
    return snapshot


def problem_of(
    session: Session, instance_id: int, serializer: StateSerializer | None = None
) -> StateProblem | None:
    """What is wrong with the stored state of an instance (None: nothing), for verify."""
    instance = session.get(Instance, instance_id)
    if instance is None:
        return None  # no row, no state: the chain's check reports the instance gone
    snapshot = read_snapshot(session, instance, serializer)
    if isinstance(snapshot, StateProblem):
        return snapshot
    return check_against_checkpoint(session, instance_id, snapshot)


def verify(session: Session, instance_id: int) -> chain.Verification:
    """The chain of an instance (chain.verify) and, when it holds, its stored state
    against the checkpoint of the event it reflects: all that can be checked without
    replaying."""
    result = chain.verify(session, instance_id)
    if not result.ok:
        return result
    problem = problem_of(session, instance_id)
    if problem is None:
        return result
    return chain.Verification(
        False, None, problem.message_with_remedy(), result.events, problem.seq or 0
    )


def task_tree(workflow: BpmnWorkflow) -> dict[str, tuple[str, str]]:
    """Every task of a workflow: its spec and state, by id (ids are derived from the
    events, so a faithful snapshot and the replay hold the same tree)."""
    return {
        str(task.id): (task.task_spec.name, TaskState.get_name(task.state))
        for task in workflow.get_tasks()
    }


@dataclass(frozen=True)
class Standing:
    """Where a workflow stands, as a stored state and the replay are compared: what
    observing it gives, and its task tree."""

    seen: stepping.Observation
    tree: dict[str, tuple[str, str]]

    @classmethod
    def of(cls, workflow: BpmnWorkflow) -> Standing:
        return cls(stepping.observe(workflow), task_tree(workflow))


def check_snapshot(snapshot: Snapshot | StateProblem, rebuilt: Standing | None) -> None:
    """The full check, at the end of a replay: the stored state must be what the replay
    rebuilt at its seq, element by element, variable by variable and task by task."""
    if isinstance(snapshot, StateProblem):
        raise Mismatch(
            snapshot.seq or 0, TABLE, f"the stored state cannot be used: {snapshot.message}"
        )
    if rebuilt is None:
        raise Mismatch(
            snapshot.seq, TABLE, f"the stored state claims event {snapshot.seq}, never replayed"
        )
    try:
        stored = Standing.of(snapshot.workflow)
    except Exception as exc:
        raise Mismatch(
            snapshot.seq, TABLE, f"the stored state cannot be used ({type(exc).__name__})"
        ) from exc
    difference = _first_difference_of(stored, rebuilt)
    if difference is not None:
        what, kept, replayed = difference
        raise Mismatch(
            snapshot.seq,
            TABLE,
            f"the stored state differs from the replay in {what}",
            recorded=kept,
            replayed=replayed,
        )


def _first_difference_of(stored: Standing, rebuilt: Standing) -> tuple[str, Any, Any] | None:
    mine, theirs = stored.seen, rebuilt.seen
    for what, kept, replayed in (
        ("completed elements", sorted(mine.completed_elements), sorted(theirs.completed_elements)),
        ("active elements", sorted(mine.active_elements), sorted(theirs.active_elements)),
        ("open tasks", sorted(mine.open_tasks), sorted(theirs.open_tasks)),
        ("timers", mine.timers, theirs.timers),
        ("completion", mine.completed, theirs.completed),
    ):
        if kept != replayed:
            return what, kept, replayed
    difference = stepping.data_difference(theirs.data, mine.data)
    if difference is not None:
        what, replayed_value, kept_value = difference
        return what, kept_value, replayed_value
    for task_id in sorted(set(stored.tree) | set(rebuilt.tree)):
        if stored.tree.get(task_id) != rebuilt.tree.get(task_id):
            return f"task {task_id}", stored.tree.get(task_id), rebuilt.tree.get(task_id)
    return None
