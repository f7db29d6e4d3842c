"""Databases the tests run on: migrated and seeded once per URL and run."""

from __future__ import annotations

import pytest

from engine import seed
from engine.store import Database

# A test parametrized on PostgreSQL carries the `postgres` marker: `-m "not postgres"`
# leaves it out, `-m postgres` runs only it. Tests that choose their backend
# (`parametrize("backend", [POSTGRES], indirect=True)`) pass this, not the bare name.
POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
BACKENDS = ["sqlite", POSTGRES]

_prepared: dict[str, Database] = {}


def prepared_database(url: str) -> Database:
    """A migrated database with demo users, catalogue and the bundled diagrams."""
    return seed.fresh_demo_database(url)


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
