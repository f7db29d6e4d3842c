"""What every command needs, and the transaction each one is.

A command is one transaction (`unit_of_work`): lock the instance row, check the
actor and the task, move the workflow, append events, write projections and state,
commit. Any failure rolls all of it back and evicts the workflows it touched from
memory (they may hold uncommitted steps), so the next command reloads the last
committed state. A unique-key clash means another command won a race for the same
instance: 409, not 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.task import Task
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.access import Policy
from engine.attachments.store import AttachmentStore
from engine.clock import Clock
from engine.errors import Conflict
from engine.forms.library import FormLibrary
from engine.pack import Pack
from engine.persistence.database import Database, Writes
from engine.persistence.instances import WorkflowCache
from engine.persistence.models import MetricValue, table
from engine.persistence.numbering import next_number
from engine.services import ServiceCall
from engine.settings import Delivery
from engine.workflow import stepping
from engine.workflow.parsing import ParsedSpecs
from engine.workflow.serializer import StateSerializer

# Serialising the whole workflow costs far more than a step (DESIGN 9), so the state
# is written every N events; a cold load replays the events after the snapshot.
DEFAULT_SNAPSHOT_EVERY = 20


@dataclass
class Remembered:
    """A workflow kept between commands, the specs it runs on, and what its last
    command observed of it."""

    workflow: BpmnWorkflow
    parsed: ParsedSpecs
    seen: stepping.Observation


@dataclass
class CommandContext:
    """The parts a command works with; one per app or CLI run, shared by threads."""

    db: Database
    pack: Pack
    forms: FormLibrary
    policy: Policy
    clock: Clock
    attachments: AttachmentStore
    cache: WorkflowCache[Remembered] = field(default_factory=WorkflowCache)
    serializer: StateSerializer = field(default_factory=StateSerializer)
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY
    # The installation's zone (calendar periods of review schedules) and where
    # notifications go out.
    timezone: str = "Asia/Shanghai"
    delivery: Delivery = field(default_factory=Delivery)


@dataclass
class Unit:
    """One command's transaction: its session, the instances it touched, the workflows
    to keep once it commits."""

    session: Session
    ctx: CommandContext
    touched: set[int] = field(default_factory=set)
    remember: list[tuple[int, int, Remembered]] = field(default_factory=list)

    def touch(self, instance_id: int) -> None:
        self.touched.add(instance_id)

    def remember_after_commit(self, instance_id: int, seq: int, kept: Remembered) -> None:
        """Keep the workflow for the next command, once (and only if) this one commits."""
        kept.workflow.script_engine = stepping.SafeScriptEngine(None, self.ctx.pack.services)
        self.remember.append((instance_id, seq, kept))


@contextmanager
def unit_of_work(ctx: CommandContext) -> Iterator[Unit]:
    unit: Unit | None = None
    try:
        with ctx.db.transaction() as session:
            unit = Unit(session, ctx)
            writes = Writes(session)
            yield unit
            writes.flush()
        for instance_id, seq, kept in unit.remember:
            ctx.cache.put(instance_id, seq, kept)
    except IntegrityError as exc:
        _evict(ctx, unit)
        raise Conflict(
            "the instance changed at the same time; reload and try again",
            reason="changed_meanwhile",
        ) from exc
    except BaseException:
        _evict(ctx, unit)
        raise


def _evict(ctx: CommandContext, unit: Unit | None) -> None:
    for instance_id in unit.touched if unit is not None else ():
        ctx.cache.evict(instance_id)


METRIC_VALUE = table(MetricValue)
_METRIC_HISTORY = (
    select(METRIC_VALUE.c.value)
    .where(METRIC_VALUE.c.code == bindparam("code"))
    .order_by(METRIC_VALUE.c.recorded_at.desc(), METRIC_VALUE.c.id.desc())
    .limit(bindparam("limit"))
)


class LiveServices:
    """The ServiceHost of a live command: services read and number through its session,
    and each call is kept for the event log."""

    def __init__(self, session: Session, at: datetime) -> None:
        self.session = session
        self.at = at
        self.calls: list[tuple[Task, ServiceCall, dict[str, Any]]] = []

    def metric_history(self, code: str, limit: int) -> list[float]:
        rows = self.session.connection().execute(_METRIC_HISTORY, {"code": code, "limit": limit})
        return [value for (value,) in reversed(rows.all())]

    def next_number(self, prefix: str) -> str:
        return next_number(self.session, prefix, self.at.year)

    def record(self, task: Task, call: ServiceCall, reads: dict[str, Any]) -> None:
        self.calls.append((task, call, reads))
