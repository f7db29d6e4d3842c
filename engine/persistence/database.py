"""Database set-up: engines, the sessions commands and readers use, buffered writes.

`Database` is made once per app or CLI run, never global. Commands write through
`Writes`, which sends a command's statements together at the end (one pipeline on
PostgreSQL); readers run without a transaction on PostgreSQL and in a deferred one on
SQLite, so a page never queues behind a command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from engine.persistence.models import Base


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
        if raw is None:
            raise OperationalError("pipelined writes", None, Exception("no open connection"))
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
