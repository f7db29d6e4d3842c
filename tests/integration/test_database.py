"""The database layer under the commands: pooled PostgreSQL connections are not tested
at every checkout, yet one that died while idle is replaced; writes are sent together
at the end of a command and fail together."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from engine.access import Actor
from engine.persistence import database
from engine.persistence.database import Database, Writes
from engine.persistence.models import Event, Instance, table
from engine.runtime import Runtime
from tests.helpers.databases import POSTGRES, shared_database


@pytest.mark.postgres
def test_a_connection_that_died_while_idle_is_replaced(
    database_urls: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = database_urls["postgres"]
    if url is None:
        pytest.skip("PostgreSQL tests need CSI_TEST_DATABASE_URL")
    db = Database(url)
    try:
        with db.sessions() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
        killer = create_engine(url)
        with killer.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        killer.dispose()
        monkeypatch.setattr(database, "IDLE_PING_SECONDS", 0.0)
        with db.sessions() as session:
            assert session.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        db.dispose()


def test_a_failing_write_fails_every_write_of_its_command(
    db: Database, rt: Runtime, actors: dict[str, Actor]
) -> None:
    """Writes go at the end of a command (on PostgreSQL in one pipeline): one that
    fails there is an IntegrityError like any other, and none of the others stays."""
    iid = rt.start_instance(actors["owner"]).instance_id
    with db.sessions() as session:
        first = session.scalar(select(Event).where(Event.instance_id == iid, Event.seq == 1))
        row = {c.name: getattr(first, c.name) for c in table(Event).columns if c.name != "id"}

    def update_and_insert_a_twin() -> None:
        with db.transaction() as session:
            writes = Writes(session)
            writes.add(update(table(Instance)).where(table(Instance).c.id == iid), {"status": "x"})
            writes.add(insert(table(Event)).inline(), [row])
            writes.flush()

    with pytest.raises(IntegrityError):
        update_and_insert_a_twin()
    with db.sessions() as session:
        assert session.get(Instance, iid).status == "running"


def test_a_reader_does_not_wait_for_a_writer_on_sqlite(tmp_path: Any) -> None:
    """Pages read without a transaction: on SQLite they never queue behind the write
    lock a command holds (WAL lets readers go on)."""
    import threading

    db = Database(f"sqlite:///{tmp_path / 'readers.sqlite3'}")
    try:
        db.create_all()
        read: list[int] = []
        with db.transaction() as writer:  # BEGIN IMMEDIATE: the write lock is held
            writer.execute(text("SELECT 1"))

            def reader() -> None:
                with db.sessions() as session:
                    read.append(session.execute(text("SELECT count(*) FROM instance")).scalar())

            thread = threading.Thread(target=reader)
            thread.start()
            thread.join(timeout=5)
            assert read == [0], "the reader waited for the writer's lock"
    finally:
        db.dispose()


@pytest.mark.parametrize("backend", ["sqlite", POSTGRES])
def test_a_snapshot_reader_sees_one_state_across_its_statements(
    backend: str, database_urls: dict[str, str | None], tmp_path: Any
) -> None:
    """verify and replay read the events, then the instance row and the projections: a
    command committing in between must not make a faithful history look broken."""
    url = database_urls[backend] if backend == "postgres" else None
    if backend == "postgres" and url is None:
        pytest.skip("PostgreSQL tests need CSI_TEST_DATABASE_URL")
    if backend == "postgres":
        db = Database(shared_database("postgres", database_urls).url)
    else:
        db = Database(f"sqlite:///{tmp_path / 'snapshot.sqlite3'}")
        db.create_all()
    try:
        with db.transaction() as session:
            session.execute(text("DELETE FROM counter WHERE name = 'snapshot-test'"))
        with db.snapshot() as reader:
            before = reader.execute(text("SELECT count(*) FROM counter")).scalar()
            with db.transaction() as writer:  # another connection commits meanwhile
                writer.execute(
                    text("INSERT INTO counter (name, value) VALUES ('snapshot-test', 1)")
                )
            after = reader.execute(text("SELECT count(*) FROM counter")).scalar()
        assert after == before
        with db.sessions() as later:
            assert later.execute(text("SELECT count(*) FROM counter")).scalar() == before + 1
    finally:
        with db.transaction() as session:
            session.execute(text("DELETE FROM counter WHERE name = 'snapshot-test'"))
        db.dispose()
