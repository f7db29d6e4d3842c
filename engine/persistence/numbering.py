"""Yearly number sequences (SI-2026-0001, RFC-2026-0001), unique under concurrency."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.persistence.database import is_postgres
from engine.persistence.models import Counter


def next_number(session: Session, prefix: str, year: int) -> str:
    """Next number of the `prefix` sequence of `year`: one atomic statement."""
    name = f"{prefix}-{year}"
    insert = pg_insert if is_postgres(session) else sqlite_insert
    statement = (
        insert(Counter)
        .values(name=name, value=1)
        .on_conflict_do_update(index_elements=["name"], set_={"value": Counter.value + 1})
        .returning(Counter.value)
    )
    value = session.execute(statement).scalar_one()
    return f"{name}-{value:04d}"
