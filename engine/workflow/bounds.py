"""How much work one command may make SpiffWorkflow do, and the spec classes that hold
it to that.

A diagram is uploaded by a modeler and its timers and multi-instance tasks read
instance data, so neither may decide alone how long a command runs:

- a timer's duration is read by engine.workflow.durations (at most five years) and
  its due time computed from the command's clock, never by SpiffWorkflow's own
  parser (which adds a year as twelve months, one month at a time) nor from the wall
  clock: the live command's time, the recorded time in a replay;
- a multi-instance task makes at most MAX_INSTANCES instances, from its
  `loopCardinality` or its `loopDataInputRef` collection;
- one command runs at most MAX_ENGINE_STEPS engine tasks (engine.workflow.stepping):
  a loop that does not end within them fails the command, before SpiffWorkflow's
  task iterator, which looks no deeper than SPIFF_MAX_DEPTH levels, would lose the
  loop's next task and leave the instance running with nothing to do.

Each bound, when hit, refuses the command with ValidationFailed (422) naming the
element; the command's transaction is rolled back, so nothing changed.

The parsed specs get these classes in place of SpiffWorkflow's (`bound`); the
serializer registers them like the classes they extend (`BOUNDED`).
"""

from __future__ import annotations

from collections.abc import Sized
from datetime import UTC, datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.spiff.specs.defaults import (
    ParallelMultiInstanceTask,
    SequentialMultiInstanceTask,
)
from SpiffWorkflow.task import Task

from engine.errors import ValidationFailed
from engine.workflow import durations

# Instances one multi-instance task may make. A form list that feeds one (the process
# owners, the measures of the bundled diagrams) should hold no more.
MAX_INSTANCES = 100
# Engine tasks (scripts, gateways, services, events...) one command may run. The
# bundled cycle's busiest command, approving a plan, runs two a measure (202 for
# MAX_INSTANCES measures); a loop of two tasks a pass would reach SPIFF_MAX_DEPTH
# after about 1000 of them.
MAX_ENGINE_STEPS = 500
# SpiffWorkflow's TaskIterator does not descend below this depth.
SPIFF_MAX_DEPTH = 1000


def element_of(task: Task) -> str:
    return getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name


def refusal(task: Task, reason: str) -> ValidationFailed:
    """The command's refusal because of `task`, keyed by its element."""
    element = element_of(task)
    return ValidationFailed(f"{element}: {reason}", {element: [reason]})


def command_time(task: Task) -> datetime:
    """The time of the command moving `task`'s workflow (the script engine holds it):
    the clock the live command read, the recorded time in a replay; the wall clock
    only for a workflow moved outside any command."""
    now = getattr(task.workflow.script_engine, "now", None)
    return now if isinstance(now, datetime) else datetime.now(UTC)


class _ClockedTimer(TimerEventDefinition):
    """A timer whose due time the engine computes, from the command's clock, and
    compares with that clock."""

    def due_at(self, task: Task, now: datetime) -> datetime:
        raise NotImplementedError

    def has_fired(self, my_task: Task) -> bool:
        now = command_time(my_task)
        value = my_task._get_internal_data("event_value")
        if value is None:
            value = self.due_at(my_task, now).isoformat()
            my_task._set_internal_data(event_value=value)
        if TimerEventDefinition.get_datetime(value) < now:
            my_task._set_internal_data(event_fired=True)
        fired: bool = my_task._get_internal_data("event_fired", False)
        return fired

    def _evaluated(self, task: Task) -> Any:
        return task.workflow.script_engine.evaluate(task, self.expression)


class ClockedDurationTimer(_ClockedTimer, DurationTimerEventDefinition):
    def due_at(self, task: Task, now: datetime) -> datetime:
        try:
            return durations.due(now, self._evaluated(task))
        except durations.InvalidDuration as exc:
            raise refusal(
                task, f"the timer's duration {self.expression!r} is {exc.message}"
            ) from exc


class ClockedDateTimer(_ClockedTimer, TimeDateEventDefinition):
    def due_at(self, task: Task, now: datetime) -> datetime:
        value = self._evaluated(task)
        try:
            return TimerEventDefinition.get_datetime(value)
        except (TypeError, ValueError) as exc:
            raise refusal(
                task, f"the timer's date {self.expression!r} is not an ISO 8601 date and time"
            ) from exc


class BoundedParallelMultiInstanceTask(ParallelMultiInstanceTask):
    """Refuses to make more than MAX_INSTANCES instances, before it makes any."""

    def create_children(self, my_task: Task) -> None:
        count_instances(my_task)
        super().create_children(my_task)


class BoundedSequentialMultiInstanceTask(SequentialMultiInstanceTask):
    """Refuses to start on more than MAX_INSTANCES instances (it makes one at a time,
    each after the one before finished)."""

    def add_next_child(self, my_task: Task) -> None:
        if not my_task.internal_data.get("merged"):
            count_instances(my_task)
        super().add_next_child(my_task)


def count_instances(task: Task) -> int | None:
    """How many instances the multi-instance `task` is about to make (None: SpiffWorkflow
    will refuse its input itself); refused past MAX_INSTANCES."""
    spec: Any = task.task_spec
    if spec.data_input is not None:
        if not spec.data_input.exists(task):
            return None
        collection = spec.data_input.get(task)
        if not isinstance(collection, Sized):
            return None
        count, source = len(collection), f"the collection {spec.data_input.bpmn_id!r}"
    else:
        value = task.workflow.script_engine.evaluate(task, spec.cardinality)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise refusal(task, "loopCardinality must give a whole number, 0 or more")
        count, source = value, "loopCardinality"
    if count > MAX_INSTANCES:
        raise refusal(
            task,
            f"{source} asks for {count} instances; a multi-instance task makes at most "
            f"{MAX_INSTANCES}",
        )
    return count


# SpiffWorkflow's class -> the engine's, which the serializer registers alike.
BOUNDED: dict[type, type] = {
    DurationTimerEventDefinition: ClockedDurationTimer,
    TimeDateEventDefinition: ClockedDateTimer,
    ParallelMultiInstanceTask: BoundedParallelMultiInstanceTask,
    SequentialMultiInstanceTask: BoundedSequentialMultiInstanceTask,
}


def _bounded(thing: Any) -> None:
    # The objects stay (other specs refer to them); only their class changes, to one
    # that adds behaviour and no state.
    bounded = BOUNDED.get(type(thing))
    if bounded is not None:
        thing.__class__ = bounded


def bound(process: BpmnProcessSpec) -> None:
    """Give a parsed process's timers and multi-instance tasks the engine's classes."""
    for task_spec in process.task_specs.values():
        _bounded(task_spec)
        event = getattr(task_spec, "event_definition", None)
        inner = event.event_definitions if isinstance(event, MultipleEventDefinition) else []
        for definition in [event, *inner]:
            _bounded(definition)
