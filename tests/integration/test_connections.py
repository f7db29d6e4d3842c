"""Pooled PostgreSQL connections are not tested at every checkout, yet one that died
while idle is replaced instead of failing the next command."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from engine import store
from engine.store import Database


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
        monkeypatch.setattr(store, "IDLE_PING_SECONDS", 0.0)
        with db.sessions() as session:
            assert session.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        db.dispose()
