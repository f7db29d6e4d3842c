"""Databases the tests run on: migrated and seeded once per URL and run."""

from __future__ import annotations

import pytest
from sqlalchemy import select
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
