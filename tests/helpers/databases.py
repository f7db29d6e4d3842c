"""Databases the tests run on: migrated and seeded once per URL and run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Connection, make_url
from werkzeug.security import generate_password_hash

from engine.commands.setup import DEMO_PASSWORD, fresh_demo_database
from engine.persistence.database import Database
from engine.persistence.models import Base, User
from procedure import PACK

# A test parametrized on PostgreSQL carries the `postgres` marker: `-m "not postgres"`
# leaves it out, `-m postgres` runs only it. Tests that choose their backend
# (`parametrize("backend", [POSTGRES], indirect=True)`) pass this, not the bare name.
POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
BACKENDS = ["sqlite", POSTGRES]

# The demo users' password, hashed cheaply. The suite logs them in a few hundred
# times, and each check of the production hash (scrypt) takes about 0.1 s; how the
# hash is made is not what those tests are about. Users that a test creates or
# re-passwords through the pages or the CLI get the production hash, so making and
# checking it stays tested.
QUICK_HASH_METHOD = "pbkdf2:sha256:1000"

# What prepared_database puts in, and what stays when committed test data is removed.
SEEDED_TABLES = {"app_user", "metric", "process_definition"}

_prepared: dict[str, Database] = {}


def postgres_url() -> str | None:
    """The PostgreSQL database of this test process: CSI_TEST_DATABASE_URL, or under
    `pytest -n` a database of each worker's own beside it (created when missing), since
    preparing a database drops its schema."""
    url = os.environ.get("CSI_TEST_DATABASE_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    server = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        server.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def prepared_database(url: str) -> Database:
    """A migrated database with demo users, catalogue and the bundled diagrams."""
    db = fresh_demo_database(url, PACK)
    demo = [user.username for user in PACK.demo_users]
    quick = generate_password_hash(DEMO_PASSWORD, method=QUICK_HASH_METHOD)
    with db.transaction() as session:
        for user in session.scalars(select(User).where(User.username.in_(demo))):
            user.password_hash = quick
    return db


def shared_database(backend: str, urls: dict[str, str | None]) -> Database:
    """The database of `backend` shared by the whole run, prepared on first use; the
    test is skipped when that backend has no URL (PostgreSQL without
    CSI_TEST_DATABASE_URL)."""
    url = urls[backend]
    if url is None:
        pytest.skip("PostgreSQL tests need CSI_TEST_DATABASE_URL")
    if backend not in _prepared:
        _prepared[backend] = prepared_database(url)
    return _prepared[backend]


def delete_committed_rows(db: Database) -> None:
    """Delete what tests committed to `db`, keeping users, catalogue and diagrams."""
    with db.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in SEEDED_TABLES:
                connection.execute(table.delete())


@contextmanager
def foreign_keys_off(db: Database) -> Iterator[Connection]:
    """A transaction that ignores foreign keys, as someone editing the (committed)
    database around the application would: SQLite's pragma outside a transaction,
    PostgreSQL's replica role, which skips the constraint triggers."""
    with db.engine.connect() as connection:
        if db.engine.dialect.name != "sqlite":
            with connection.begin():
                connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
                yield connection
            return
        raw = connection.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")  # in autocommit: outside any transaction
        try:
            with connection.begin():
                yield connection
        finally:
            raw.execute("PRAGMA foreign_keys=ON")
