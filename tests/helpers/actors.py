"""The people of the demo database as the engine sees them."""

from __future__ import annotations

from sqlalchemy import select

from engine.access import Actor
from engine.persistence.database import Database
from engine.persistence.models import User


def actors_of(db: Database) -> dict[str, Actor]:
    """Every user of `db` by username."""
    with db.sessions() as session:
        return {u.username: Actor.of(u) for u in session.scalars(select(User))}
