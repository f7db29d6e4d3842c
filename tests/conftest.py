"""Fixtures: real SQLite and (when CSI_TEST_DATABASE_URL is set) real PostgreSQL.

The schema is migrated and the demo users and bundled diagrams are seeded once per
database per run; each test then runs inside an outer transaction that is rolled
back afterwards, every command's commit being a savepoint inside it.

Tiers, by marker: `postgres` (the PostgreSQL half: needs CSI_TEST_DATABASE_URL),
`e2e` (tests/e2e: Chromium), `bench` (tests/bench: the benchmark harness). Without
them, `-m "not e2e and not postgres and not bench"`, the suite needs no database
server and no browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.access import Actor
from engine.persistence.database import Database
from engine.runtime import Runtime
from tests.helpers.actors import actors_of
from tests.helpers.databases import (
    BACKENDS,
    delete_committed_rows,
    postgres_url,
    shared_database,
)

POSTGRES_URL = postgres_url()
# Tests under these directories carry the marker of the same name.
DIRECTORY_MARKERS = {"e2e": pytest.mark.e2e, "bench": pytest.mark.bench}
TESTS_DIR = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark by directory before `-m` selects (tryfirst), so a new file there is in
    its tier without anyone remembering to mark it."""
    for item in items:
        path = item.path.resolve()
        if TESTS_DIR in path.parents:
            top = path.relative_to(TESTS_DIR).parts[0]
            if top in DIRECTORY_MARKERS:
                item.add_marker(DIRECTORY_MARKERS[top])


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str | None]:
    sqlite_file = tmp_path_factory.mktemp("db") / "csi-test.sqlite3"
    return {"sqlite": f"sqlite:///{sqlite_file}", "postgres": POSTGRES_URL}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on. A test that picks its own (indirect
    parametrization) passes `POSTGRES`, so the marker comes along."""
    if request.param == "postgres" and request.node.get_closest_marker("postgres") is None:
        pytest.fail(
            "a test on PostgreSQL must carry the postgres marker: parametrize with POSTGRES"
        )
    return str(request.param)


@pytest.fixture
def db(backend: str, database_urls: dict[str, str | None]) -> Iterator[Database]:
    """A database whose changes vanish after the test (outer transaction rolled back)."""
    base = shared_database(backend, database_urls)
    connection = base.engine.connect()
    outer = connection.begin()
    try:
        yield Database.bound_to(connection)
    finally:
        outer.rollback()
        connection.close()


@pytest.fixture
def committed_db(backend: str, database_urls: dict[str, str | None]) -> Iterator[Database]:
    """A database with real commits, for tests that need several connections (threads).
    What the test wrote is deleted afterwards, keeping users, catalogue and diagrams."""
    base = shared_database(backend, database_urls)
    try:
        yield base
    finally:
        delete_committed_rows(base)


@pytest.fixture
def rt(db: Database) -> Runtime:
    return Runtime(db)


@pytest.fixture
def actors(db: Database) -> dict[str, Actor]:
    return actors_of(db)


@pytest.fixture
def app(db: Database, tmp_path: Path):  # type: ignore[no-untyped-def]
    from web import create_app

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "DATABASE": db,
            "DATABASE_URL": db.url,
            "WTF_CSRF_ENABLED": True,
        }
    )
    app.instance_path = str(tmp_path)
    return app


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def runner(app):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()
