"""SQLAlchemy 2.0 typed models and database set-up.

Tables are projections the pages read directly (instances, human tasks, records,
metric values) plus the append-only event log and the serialized workflow state.
Nothing here deserialises workflow state: pages read rows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

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
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)
from sqlalchemy.pool import StaticPool


def utcnow() -> datetime:
    return datetime.now(UTC)


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


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


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

    def has_role(self, role: str) -> bool:
        return role in (self.roles or [])


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
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ImprovementRecord(Base):
    """服务改进记录: the register's row of one service_improvement instance."""

    __tablename__ = "improvement_record"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("instance.id"), unique=True)
    status: Mapped[str] = mapped_column(String(32), default="registered", index=True)
    source: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(256), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    raised_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    raised_on: Mapped[datetime] = mapped_column(default=utcnow)
    closed_on: Mapped[datetime | None] = mapped_column(nullable=True)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    instance: Mapped[Instance] = relationship(lazy="select")


class Metric(Base):
    """Catalogue of metrics (度量项) with unit and direction."""

    __tablename__ = "metric"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(Text, default="")


class MetricValue(Base):
    """Every measured value with its period: baselines and trends come from here."""

    __tablename__ = "metric_value"
    __table_args__ = (Index("ix_metric_value_code_at", "code", "recorded_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    period: Mapped[str] = mapped_column(String(32), default="")
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instance.id"), nullable=True)
    recorded_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Counter(Base):
    """Yearly sequences (SI-2026, RFC-2026): incremented atomically by one statement."""

    __tablename__ = "counter"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


# -- engine and sessions --------------------------------------------------------------


def table(model: type[Base]) -> Table:
    """The Core table of a model, for the write path's plain statements."""
    return cast(Table, model.__table__)


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def make_engine(url: str) -> Engine:
    """Engine for `url`; SQLite gets write transactions that take the lock up front."""
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": 30},
            "json_serializer": _json_dumps,
        }
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy (not the driver) issue BEGIN, so it can be BEGIN IMMEDIATE:
            # writers then queue on the database lock instead of failing on upgrade.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.get_execution_options().get(READS_ONLY):
                # A reader: a deferred transaction reads one snapshot and takes no lock
                # a writer waits for, nor waits for one (WAL).
                conn.exec_driver_sql("BEGIN")
                return
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, json_serializer=_json_dumps, pool_size=10)
    _ping_connections_after_idling(engine)
    return engine


# A pooled connection unused for this long is tested before it is handed out.
IDLE_PING_SECONDS = 10.0


def _ping_connections_after_idling(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping tests every connection at every checkout: one more
    round trip per command (about a third of a command's database time on loopback).
    A connection in steady use cannot have gone stale, so only one that sat idle in
    the pool is tested; if the test fails the pool drops it and hands out another."""

    @event.listens_for(engine, "checkin")
    def _note_idle(_dbapi_connection: Any, record: Any) -> None:
        record.info["csi_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("csi_idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()
        except Exception as exc:
            raise DisconnectionError("a pooled connection went away") from exc


def is_postgres(session: Session) -> bool:
    bind = session.get_bind()
    return bind.dialect.name == "postgresql"


class Writes:
    """The write statements of one command, sent together when it saves.

    On PostgreSQL they go as one pipeline: one round trip for all of them instead of
    one each (a command writes events, task rows, its record and the instance row).
    Nothing in a command reads back what it writes, so holding them to the end changes
    nothing else. A write that fails there fails the command like any other."""

    _KEY = "csi_writes"

    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending: list[tuple[Any, Any]] = []
        session.info[self._KEY] = self

    @classmethod
    def of(cls, session: Session) -> Writes:
        writes = session.info.get(cls._KEY)
        if writes is None:
            raise RuntimeError("writes are buffered inside a command only")
        return writes

    def add(self, statement: Any, params: Any) -> None:
        self.pending.append((statement, params))

    def flush(self) -> None:
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        connection = self.session.connection()
        if connection.dialect.name != "postgresql":
            for statement, params in pending:
                connection.execute(statement, params)
            return
        import psycopg

        raw = connection.connection.dbapi_connection
        assert raw is not None
        try:
            with raw.pipeline():
                for statement, params in pending:
                    # One execute per row: queued in the pipeline they cost no round
                    # trip, and SQLAlchemy's multi-row INSERT batching wants to read
                    # results a pipeline has not delivered yet.
                    for row in params if isinstance(params, list) else [params]:
                        connection.execute(statement, row)
        except psycopg.Error as exc:
            # Errors of a pipeline surface here, from the driver: name them as SQLAlchemy
            # would, so the command's handler treats them alike, and drop a connection
            # that broke (the pool tests only idle ones).
            if isinstance(exc, psycopg.IntegrityError):
                raise IntegrityError("pipelined writes", None, exc) from exc
            if isinstance(exc, psycopg.OperationalError) or raw.closed:
                connection.invalidate(exc)
                raise OperationalError("pipelined writes", None, exc) from exc
            raise DBAPIError("pipelined writes", None, exc) from exc


# Execution option of the engine that read sessions use (SQLite: no BEGIN IMMEDIATE).
READS_ONLY = "csi_reads_only"


class Database:
    """An engine and its session factories; one per app or CLI run, never global.

    `transaction()` opens a command's unit of work. `sessions()` opens a reader's: on
    SQLite a deferred transaction (one snapshot, no write lock: a page never queues
    behind a command), on PostgreSQL autocommit (each statement sees what is committed,
    as READ COMMITTED would; no BEGIN and ROLLBACK round trips). `snapshot()` opens a
    reader that sees one state of the whole database across its statements, for what
    compares several tables (verify, replay, anchors). Write only in a transaction:
    what goes through a reader is not atomic."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        # No autoflush: a command writes once, at commit, in as few statements as it can.
        self.writers = sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        if self.engine.dialect.name == "postgresql":
            readers = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        else:
            readers = self.engine.execution_options(**{READS_ONLY: True})
        self.sessions = sessionmaker(readers, expire_on_commit=False, autoflush=False)
        self.snapshot = (
            sessionmaker(
                self.engine.execution_options(isolation_level="REPEATABLE READ"),
                expire_on_commit=False,
                autoflush=False,
            )
            if self.engine.dialect.name == "postgresql"
            else self.sessions
        )

    @classmethod
    def bound_to(cls, connection: Connection) -> Database:
        """Sessions that run inside `connection`'s open transaction, each commit a
        savepoint: tests roll the whole outer transaction back afterwards."""
        db = cls(str(connection.engine.url), connection.engine)
        db.writers = db.sessions = db.snapshot = sessionmaker(
            bind=connection,
            expire_on_commit=False,
            autoflush=False,
            join_transaction_mode="create_savepoint",
        )
        return db

    def create_all(self) -> None:
        Base.metadata.create_all(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit when the block ends, roll back on any error."""
        with self.writers() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
