"""SQLAlchemy 2.0 typed models.

Tables are projections the pages read directly (instances, human tasks, records,
metric values) plus the append-only event log and the serialized workflow state.
Nothing here deserialises workflow state: pages read rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from engine.clock import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite forgets time zones; every datetime we store is UTC, so say so on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class UnreadablePayload(dict[str, Any]):
    """What an event's payload reads as when the database no longer holds a JSON object
    there (someone wrote other text, a number or null over it): empty, so that nothing
    reading it fails, and marked, so that history, verify and replay report the event
    instead of trusting it. `stored` is the text as the database holds it."""

    def __init__(self, stored: str) -> None:
        super().__init__()
        self.stored = stored


def readable(payload: Any) -> bool:
    return not isinstance(payload, UnreadablePayload)


def payload_from_text(stored: Any) -> dict[str, Any]:
    """An event's payload from the text the database holds: the one rule by which both
    reading the history and verifying its hashes decode it."""
    try:
        value = json.loads(stored)
    except (ValueError, TypeError):  # not JSON; or not text at all (SQLite's affinity)
        return UnreadablePayload(str(stored))
    return value if isinstance(value, dict) else UnreadablePayload(str(stored))


def _decoded_payload(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return UnreadablePayload(json.dumps(value))


class EventPayload(TypeDecorator[dict[str, Any]]):
    """JSON in the database; read back as a dict, or as an UnreadablePayload when the
    stored value is not a JSON object (decoding it would otherwise fail every page and
    command that reads the history)."""

    impl = JSON
    cache_ok = True

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        # Overridden, not process_result_value: the decoding itself must be guarded.
        if self.impl_instance.result_processor(dialect, coltype) is None:
            return _decoded_payload  # the driver decodes JSON itself (PostgreSQL)
        return payload_from_text


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Sessions and API tokens carry it; bumping it (password change, deactivation,
    # "log out everywhere") ends every one issued before.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Where notifications are mailed, and whether the person wants them by e-mail at all
    # (they are shown in the app either way).
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    email_notifications: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    def has_role(self, role: str) -> bool:
        return role in (self.roles or [])


class EndedSession(Base):
    """A session someone logged out of: a copy of its cookie is refused. Kept only as
    long as such a cookie could still be valid (the session lifetime)."""

    __tablename__ = "ended_session"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    ended_at: Mapped[datetime] = mapped_column(index=True)


class ProcessDefinition(Base):
    """One deployed version of one BPMN process; immutable once written."""

    __tablename__ = "process_definition"
    __table_args__ = (
        UniqueConstraint("process_id", "version"),
        UniqueConstraint("process_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    # Deferred: pages and commands name a definition far more often than they parse it.
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    filename: Mapped[str] = mapped_column(String(256), default="")
    called_processes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)
    deployed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The forms of its user tasks and start form, {task id: form document}: part of the
    # version (and of its content hash). NULL on versions deployed before forms were
    # versioned: they read the pack's form files, as they always did.
    forms: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True, deferred=True
    )
    # Document control (编制 / 批准 / 变更说明): who drafted it, who approved it, why.
    author: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    change_note: Mapped[str] = mapped_column(Text, default="", server_default="")


class Draft(Base):
    """A process owner's unpublished edit of one process: its diagram and forms, lint
    findings as of the last save, and where it stands on the way to a version."""

    __tablename__ = "model_draft"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[str] = mapped_column(String(128), index=True)
    author: Mapped[str] = mapped_column(String(64))
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    forms: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, deferred=True)
    note: Mapped[str] = mapped_column(Text, default="")
    # editing | submitted | rejected | approved | withdrawn
    status: Mapped[str] = mapped_column(String(16), default="editing", index=True)
    base_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lint: Mapped[list[Any]] = mapped_column(JSON, default=list)
    comment: Mapped[str] = mapped_column(Text, default="")  # the approver's, on reject
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)  # once approved


class ModelEvent(Base):
    """The model log: submissions, approvals, rejections and deployments of the
    procedure, one hash chain for the whole database (`seq` dense from 1)."""

    __tablename__ = "model_event"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    process_id: Mapped[str] = mapped_column(String(128), index=True)
    draft_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(EventPayload, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ModelLogHead(Base):
    """The end of the model log, one row locked by whoever appends, so that two
    publications never chain onto the same entry."""

    __tablename__ = "model_log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64), default="0" * 64)


class Instance(Base):
    __tablename__ = "instance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[str] = mapped_column(String(128), index=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definition.id"))
    # {process_id: definition_id} of called processes, pinned when the instance starts
    called_definitions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Hash of event `last_seq`: the next event chains onto it without reading the log.
    last_hash: Mapped[str] = mapped_column(String(64), default="0" * 64)
    snapshot_seq: Mapped[int] = mapped_column(Integer, default=0)  # seq of workflow_state
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Element ids done / waiting, for drawing the diagram without loading the state.
    completed_elements: Mapped[list[Any]] = mapped_column(JSON, default=list)
    active_elements: Mapped[list[Any]] = mapped_column(JSON, default=list)
    next_timer_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)
    started_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    parent_instance_id: Mapped[int | None] = mapped_column(ForeignKey("instance.id"), nullable=True)
    # Why the worker last failed to move the instance on (a timer's command hit a bound
    # or a rule): {"at", "message", "details"}; the worker leaves it alone until a
    # command moves it again, which clears this. None is stored as SQL NULL, which the
    # worker's query looks for (not as JSON null).
    incident: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)

    definition: Mapped[ProcessDefinition] = relationship(lazy="select")


class WorkflowState(Base):
    """The latest serialized workflow (spec stripped) and the event seq it reflects."""

    __tablename__ = "workflow_state"

    instance_id: Mapped[int] = mapped_column(ForeignKey("instance.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)


class HumanTask(Base):
    """Inbox projection: one row per user task that is or was READY."""

    __tablename__ = "human_task"
    __table_args__ = (
        # The header's counts of one's open and overdue tasks, read off this index alone.
        Index(
            "ix_human_task_mine",
            "role",
            "assignee",
            "due_at",
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        # The inbox: open tasks of one role in due order, read straight off this index.
        Index(
            "ix_human_task_inbox",
            "role",
            text("(due_at IS NULL)"),
            "due_at",
            "created_at",
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index("ix_human_task_instance", "instance_id", "status"),
        # The dashboard's overdue tasks by role and person: a range of this index only.
        Index(
            "ix_human_task_overdue",
            "due_at",
            "role",
            "assignee",
            "claimed_by",
            "instance_id",
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        # The worker's look for tasks due tomorrow or overdue.
        Index(
            "ix_human_task_due",
            "due_at",
            postgresql_where=text("status = 'open' AND due_at IS NOT NULL"),
            sqlite_where=text("status = 'open' AND due_at IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # SpiffWorkflow task id
    instance_id: Mapped[int] = mapped_column(ForeignKey("instance.id"))
    process_id: Mapped[str] = mapped_column(String(128))  # the (sub)process it belongs to
    bpmn_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(256))
    lane: Mapped[str | None] = mapped_column(String(128), nullable=True)
    role: Mapped[str | None] = mapped_column(String(64), nullable=True)
    assignee: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    label: Mapped[str] = mapped_column(String(256), default="")
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|completed|cancelled
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # What the task's form reads of its data (engine.forms.inputs_of), copied when the
    # task became READY: the form page never deserialises workflow state.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, deferred=True)

    instance: Mapped[Instance] = relationship(lazy="select")


class Event(Base):
    """Append-only history; `seq` is dense per instance (unique, so no gaps or twins)."""

    __tablename__ = "event"
    __table_args__ = (UniqueConstraint("instance_id", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instance.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    bpmn_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(EventPayload, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Record(Base):
    """The register entry of an instance whose process declares a record (its diagram
    names a numbering prefix), e.g. a 服务改进记录."""

    __tablename__ = "process_record"
    # The register filters and sorts on these columns; each filter reads an index.
    __table_args__ = (
        Index("ix_process_record_source", "source"),
        # With closed_on, the register's counts per stage and state read only the index.
        Index("ix_process_record_status", "status", "closed_on"),
        Index("ix_process_record_raised_by", "raised_by"),
        Index("ix_process_record_raised_on", "raised_on"),
        Index("ix_process_record_closed_on", "closed_on"),
        Index("ix_process_record_gap_status", "gap_status"),
        # The dashboard's figures: each groups by one of these without reading the table.
        Index("ix_process_record_open_stage", "closed_on", "status"),
        Index("ix_process_record_cycle", "closed_quarter", "cycle_days"),
        Index("ix_process_record_outcomes", "outcomes_quarter", "outcomes"),
        Index("ix_process_record_verdict", "verdict_quarter", "verdict"),
        Index("ix_process_record_open_gaps", "closed_on", "gaps"),
        Index("ix_process_record_open_due", "closed_on", "due_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instance.id"), unique=True)
    status: Mapped[str] = mapped_column(String(32), default="registered")
    source: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(256), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    raised_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    raised_on: Mapped[datetime] = mapped_column(default=utcnow)
    closed_on: Mapped[datetime | None] = mapped_column(nullable=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Register columns the pack's `record.register` section derives from the data
    # (engine.projections.records.RegisterColumns): lists kept as " a b " so that one
    # LIKE '% a %' finds a member; the worst gap status; the earliest open due date.
    people: Mapped[str | None] = mapped_column(Text, nullable=True)
    metric_codes: Mapped[str | None] = mapped_column(Text, nullable=True)
    gap_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    due_on: Mapped[str | None] = mapped_column(String(10), nullable=True)
    # The dashboard's columns (engine.queries.dashboard), kept by the same commands:
    # each metric's gap status as " CODE:status … ", the calls' outcomes as " failed
    # implemented … " with the quarter they were last recorded in, the verification's
    # verdict and its quarter, and once closed, the quarter and the days it took.
    gaps: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcomes: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcomes_quarter: Mapped[str | None] = mapped_column(String(7), nullable=True)
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True)
    verdict_quarter: Mapped[str | None] = mapped_column(String(7), nullable=True)
    closed_quarter: Mapped[str | None] = mapped_column(String(7), nullable=True)
    cycle_days: Mapped[int | None] = mapped_column(Integer, nullable=True)

    instance: Mapped[Instance] = relationship(lazy="select")


class Metric(Base):
    """Catalogue of metrics (度量项) with unit and direction. A retired metric is never
    deleted: its readings and the improvements that used it keep pointing at it."""

    __tablename__ = "metric"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(64), default="", server_default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class MetricValue(Base):
    """Every measured value with its period: baselines and trends come from here."""

    __tablename__ = "metric_value"
    __table_args__ = (
        Index("ix_metric_value_code_at", "code", "recorded_at"),
        # a record's readings (its page, its document, the register's readings sheet)
        Index("ix_metric_value_instance", "instance_id", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    period: Mapped[str] = mapped_column(String(32), default="")
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instance.id"), nullable=True)
    recorded_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewSchedule(Base):
    """A periodic review (2.5.1 定期进行服务改进评审): the worker starts `process_id`
    once per period of `recurrence` (an ISO 8601 repeating interval), on behalf of
    `owner`, with the process owners it names."""

    __tablename__ = "review_schedule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    process_id: Mapped[str] = mapped_column(String(128))
    # As the administrator chose it: a named period (monthly, quarterly, yearly) or
    # the repeating interval itself; `recurrence` is always the interval.
    period: Mapped[str] = mapped_column(String(128))
    recurrence: Mapped[str] = mapped_column(String(128))
    owner: Mapped[str] = mapped_column(String(64))
    process_owners: Mapped[list[Any]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Why the last start failed (the owner left, the process is gone), for the admin page.
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class ReviewRun(Base):
    """One period of one schedule that has its improvement: the unique key is what
    makes the start happen once, however many workers try at the same moment."""

    __tablename__ = "review_run"
    __table_args__ = (UniqueConstraint("schedule_id", "period_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("review_schedule.id"))
    period_start: Mapped[datetime] = mapped_column()
    period_label: Mapped[str] = mapped_column(String(64))
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instance.id"), nullable=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """The outbox: written in the transaction of the command (or worker pass) that has
    something to tell, delivered afterwards by the worker. One row per recipient; each
    channel (e-mail, webhook) has its own state: pending, sent, failed (gave up after
    the last try) or off (not configured, opted out, no address)."""

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("task_id", "kind", "recipient", name="uq_notification_once"),
        Index("ix_notification_recipient", "recipient", "created_at"),
        Index(
            "ix_notification_email_due",
            "email_next_at",
            postgresql_where=text("email_status = 'pending'"),
            sqlite_where=text("email_status = 'pending'"),
        ),
        Index(
            "ix_notification_webhook_due",
            "webhook_next_at",
            postgresql_where=text("webhook_status = 'pending'"),
            sqlite_where=text("webhook_status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))  # task_arrived | due_tomorrow | overdue
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    instance_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    link: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(nullable=True)
    email_status: Mapped[str] = mapped_column(String(16), default="pending")
    email_attempts: Mapped[int] = mapped_column(Integer, default=0)
    email_next_at: Mapped[datetime] = mapped_column(default=utcnow)
    email_sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    email_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_status: Mapped[str] = mapped_column(String(16), default="pending")
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    webhook_next_at: Mapped[datetime] = mapped_column(default=utcnow)
    webhook_sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    webhook_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Counter(Base):
    """Yearly sequences (SI-2026, RFC-2026): incremented atomically by one statement."""

    __tablename__ = "counter"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


def table(model: type[Base]) -> Table:
    """The Core table of a model, for the write path's plain statements."""
    return cast(Table, model.__table__)
