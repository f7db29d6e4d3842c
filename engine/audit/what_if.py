"""What-if replay: an instance's recorded history replayed on other specs of its
process (a draft), to find the first step where it would have gone differently.

Two runs go through the record in lockstep, through replay's own loop and stepping:
the replay on the pinned definitions, held to the record exactly as `csi replay`
holds it, and a run on the other specs, which gets the same commands at the same
times, the same recorded service reads, and fires the timers the record fired.

The other run cannot find what the record names by its id: task ids are drawn in the
order the engine creates tasks, which another diagram changes. It finds what the
pinned run finds under that id, by what it is: the same element of the same process,
the n-th of its open instances (of a multi-instance task). After each command the
runs are compared in behaviour, never in storage: the open tasks (by element), the
completion, the waiting timers (element and due time) and the data. Content hashes
and the pages' rows differ for any other diagram, and are not compared.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.orm import Session

from engine.audit import replay
from engine.audit.mismatch import Mismatch, payload_of
from engine.audit.state import COMMAND_EVENTS
from engine.errors import Conflict, DomainError
from engine.pack import Pack
from engine.persistence.models import Event
from engine.workflow import stepping
from engine.workflow.parsing import ParsedSpecs

# The specs to run on, given the called processes' definitions the record pinned at
# that step ({process id: definition id}, from instance_started or instance_migrated).
SpecsFor = Callable[[Mapping[str, int]], ParsedSpecs]

# What the record names, found by what it is: (process, element, which of its kind).
Key = tuple[str, str | None, int]

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80
_short.maxlist = _short.maxdict = 6
_short.maxlevel = 3


@dataclass(frozen=True)
class Divergence:
    """The first step where the history goes differently on the other specs."""

    seq: int
    element: str | None
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "element": self.element, "description": self.description}


class _Diverged(Mismatch):
    """A difference the other specs make (a Mismatch of the pinned run is the record's)."""


def _key(tasks: list[Task], task: Task) -> Key:
    process, element = task.workflow.spec.name, stepping.element(task)
    alike = [t for t in tasks if (t.workflow.spec.name, stepping.element(t)) == (process, element)]
    return process, element, alike.index(task)


def _found(tasks: list[Task], key: Key) -> Task | None:
    process, element, nth = key
    alike = [t for t in tasks if (t.workflow.spec.name, stepping.element(t)) == (process, element)]
    return alike[nth] if nth < len(alike) else None


class DraftServices(replay.ReplayServices):
    """The record's reads; where the draft asks for one the record lacks, an empty
    answer: the draft has gone its own way at that step, which the comparison after it
    reports (and, failing that, the check of its service calls)."""

    def metric_history(self, code: str, limit: int) -> list[float]:
        try:
            return super().metric_history(code, limit)
        except DomainError:
            return []

    def next_number(self, prefix: str) -> str:
        try:
            return super().next_number(prefix)
        except DomainError:
            return f"{prefix}?"


class WhatIfRun(replay.Run):
    """A run of the record on other specs, finding what the record names through the
    pinned run beside it (`expect`, before the pinned run takes the event)."""

    who = "the draft"

    def __init__(self, pinned: replay.Run, specs: SpecsFor) -> None:
        super().__init__(pinned.session, pinned.instance, pinned.functions)
        self.pinned = pinned
        self.specs = specs
        self.task_key: Key | None = None
        self.timer_keys: list[Key] = []
        self.calls: tuple[Event, list[Event], replay.ReplayServices] | None = None

    def expect(self, event: Event) -> None:
        """Note what `event` names, as the pinned run stands before it. When the pinned
        run cannot find it, that run reports the record's own mismatch."""
        self.task_key, self.timer_keys = None, []
        workflow = self.pinned.workflow
        if workflow is None:
            return
        try:
            if event.type == "timer_fired":
                waiting = stepping.waiting_timers(workflow)
                fired = set(payload_of(event).get("fired") or [])
                self.timer_keys = [_key(waiting, t) for t in waiting if str(t.id) in fired]
            elif event.task_id is not None:
                task = stepping.ready_task(workflow, event.task_id)
                self.task_key = _key(stepping.ready_user_tasks(workflow), task)
        except Exception:
            self.task_key, self.timer_keys = None, []

    def specs_for(self, event: Event) -> ParsedSpecs:
        called = payload_of(event).get("called") or {}
        return self.specs({str(k): v for k, v in called.items() if isinstance(v, int)})

    def open_task(self, workflow: BpmnWorkflow, event: Event) -> Task:
        task = (
            _found(stepping.ready_user_tasks(workflow), self.task_key)
            if self.task_key is not None
            else None
        )
        if task is None:
            raise Conflict(f"the recorded task {event.bpmn_id} is not open in the draft")
        return task

    def timers_named(self, workflow: BpmnWorkflow, event: Event) -> set[str]:
        waiting = stepping.waiting_timers(workflow)
        named: set[str] = set()
        for key in self.timer_keys:
            timer = _found(waiting, key)
            if timer is None:
                raise Conflict(f"the timer {key[1]} the record fired is not waiting in the draft")
            named.add(str(timer.id))
        return named

    def services_for(self, recorded: list[Event]) -> replay.ReplayServices:
        return DraftServices(recorded)

    def check_services(
        self, event: Event, recorded: list[Event], host: replay.ReplayServices
    ) -> None:
        # Held until the behaviour has been compared: where the runs part says more
        # than which service call they part at.
        self.calls = (event, recorded, host)

    def check_held_services(self) -> None:
        if self.calls is not None:
            held, self.calls = self.calls, None
            super().check_services(*held)

    def is_recorded_task(self, service_event: Event, task: Task) -> bool:
        return stepping.element(task) == service_event.bpmn_id

    def settle(
        self, workflow: BpmnWorkflow, event: Event, before: dict[str, Any]
    ) -> stepping.Observation:
        return stepping.observe(workflow)

    def failed_element(self, failure: BaseException) -> str | None:
        """The element a failed step of this run stopped at, if it says: the task that
        failed, or the element the refusal names (a bound, an unsafe expression)."""
        if self.workflow is not None:
            for task in self.workflow.get_tasks(state=TaskState.ERROR):
                return stepping.element(task)
        refusal = failure.__cause__ if isinstance(failure, Mismatch) else failure
        if isinstance(refusal, DomainError) and isinstance(refusal.details, dict):
            for key in refusal.details:
                if key in self._elements():
                    return str(key)
        return None

    def _elements(self) -> set[str]:
        if self.parsed is None:
            return set()
        specs = [self.parsed.spec, *self.parsed.subprocess_specs.values()]
        return {spec.bpmn_id for p in specs for spec in p.task_specs.values() if spec.bpmn_id}


@dataclass(frozen=True)
class _Behaviour:
    """What a run did, as the people in the process would see it."""

    open_tasks: list[str]
    completed: bool
    timers: list[str]
    data: dict[str, Any]
    flows: list[str]

    @classmethod
    def of(cls, workflow: BpmnWorkflow, seen: stepping.Observation) -> _Behaviour:
        timers = sorted(
            f"{stepping.element(t)} at {t.internal_data.get('event_value')}"
            for t in stepping.waiting_timers(workflow)
        )
        return cls(
            sorted(str(stepping.element(t)) for t in stepping.ready_user_tasks(workflow)),
            bool(workflow.completed),
            timers,
            seen.data,
            stepping.taken_flows(workflow),
        )


def _listed(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


class Lockstep:
    """The pinned run and the what-if run, one event at a time (replay.Replaying)."""

    def __init__(self, pinned: replay.Run, draft: WhatIfRun) -> None:
        self.pinned, self.draft = pinned, draft
        self.flows: tuple[set[str], set[str]] = (set(), set())

    def event(self, events: list[Event], index: int, consumed: set[int]) -> list[int]:
        event = events[index]
        self.draft.expect(event)
        done = self.pinned.event(events, index, consumed)
        try:
            self.draft.event(events, index, consumed)
            if event.type in COMMAND_EVENTS:
                self._compare(event)
                self.draft.check_held_services()
        except _Diverged:
            raise
        except Mismatch as mismatch:
            raise _Diverged(
                mismatch.seq,
                self.draft.failed_element(mismatch) or mismatch.element,
                mismatch.message,
            ) from mismatch
        except Exception as exc:
            raise _Diverged(
                event.seq,
                self.draft.failed_element(exc) or event.bpmn_id,
                f"the draft cannot take this step: {type(exc).__name__}: {exc}",
            ) from exc
        return done

    def _compare(self, event: Event) -> None:
        pinned, draft = self.pinned, self.draft
        if pinned.workflow is None or pinned.seen is None:
            raise Mismatch(event.seq, event.bpmn_id, "the replay took a command and stands nowhere")
        if draft.workflow is None or draft.seen is None:
            raise _Diverged(event.seq, event.bpmn_id, "the draft took this step and stands nowhere")
        recorded = _Behaviour.of(pinned.workflow, pinned.seen)
        drafted = _Behaviour.of(draft.workflow, draft.seen)
        parting = self._parting(event, recorded.flows, drafted.flows)
        for what, mine, theirs in (
            ("open tasks", recorded.open_tasks, drafted.open_tasks),
            ("waiting timers", recorded.timers, drafted.timers),
        ):
            if mine != theirs:
                raise _Diverged(
                    event.seq,
                    parting,
                    f"after this step the {what} differ: recorded {_listed(mine)}"
                    f" vs draft {_listed(theirs)}",
                )
        if recorded.completed != drafted.completed:
            finished, unfinished = (
                ("record", "draft") if recorded.completed else ("draft", "record")
            )
            raise _Diverged(
                event.seq,
                parting,
                f"after this step the {finished} is finished and the {unfinished} is not",
            )
        difference = stepping.data_difference(recorded.data, drafted.data)
        if difference is not None:
            what, mine_value, theirs_value = difference
            raise _Diverged(
                event.seq,
                event.bpmn_id,
                f"after this step the {what} differs: recorded {_short.repr(mine_value)}"
                f" vs draft {_short.repr(theirs_value)}",
            )

    def _parting(self, event: Event, recorded: list[str], drafted: list[str]) -> str | None:
        """Where the runs part at this step: the source of the first flow one of them took
        now and the other did not (the event's element when they took the same)."""
        new_recorded = [f for f in recorded if f not in self.flows[0]]
        new_drafted = [f for f in drafted if f not in self.flows[1]]
        self.flows = (set(recorded), set(drafted))
        apart = [f for f in new_recorded if f not in new_drafted] or [
            f for f in new_drafted if f not in new_recorded
        ]
        return apart[0].split(">", 1)[0] if apart else event.bpmn_id


def what_if(session: Session, pack: Pack, instance_id: int, specs: SpecsFor) -> Divergence | None:
    """Replay the instance's history on `specs` beside its own; the first step where it
    goes differently (None: it replays identically). A record that does not replay on
    its own definitions is reported as such, at its first mismatch."""
    instance, events = replay.instance_and_log(session, instance_id)
    pinned = replay.Run(session, instance, pack.services)
    try:
        replay.replay_events(Lockstep(pinned, WhatIfRun(pinned, specs)), events, 1)
    except _Diverged as diverged:
        return Divergence(diverged.seq, diverged.element, diverged.message)
    except Mismatch as mismatch:
        return Divergence(
            mismatch.seq,
            mismatch.element,
            f"the record does not replay on its own version here: {mismatch.message}",
        )
    return None
