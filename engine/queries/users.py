"""Users as sign-in, administration and the audit console's person filter read them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from engine.errors import NotFound
from engine.persistence.models import User
from engine.queries.views import UserRow

# Checked against when the username is unknown, so that a wrong name costs as long as
# a wrong password (no telling which usernames exist by the time an answer takes).
_NOBODY_HASH = (
    "scrypt:32768:8:1$csinobodysalt0000$"
    "8f1b0b6a2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6"
    "0718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7"
)


def user_row(user: User) -> UserRow:
    return UserRow(
        user.id,
        user.username,
        user.display_name,
        tuple(user.roles or ()),
        bool(user.active),
        user.locale,
        user.created_at,
    )


def users(session: Session) -> list[UserRow]:
    return [user_row(u) for u in session.scalars(select(User).order_by(User.username))]


def user(session: Session, user_id: int) -> UserRow:
    found = session.get(User, user_id)
    if found is None:
        raise NotFound(f"no user {user_id}")
    return user_row(found)


def active_user(session: Session, user_id: int) -> UserRow | None:
    found = session.get(User, user_id)
    return user_row(found) if found is not None and found.active else None


def named(session: Session, username: str) -> UserRow | None:
    found = session.scalar(select(User).where(User.username == username))
    return user_row(found) if found is not None else None


def signed_in(session: Session, username: str, password: str) -> UserRow | None:
    """The active user whose password this is, else None."""
    found = session.scalar(select(User).where(User.username == username))
    if found is None:
        check_password_hash(_NOBODY_HASH, password)
        return None
    if not found.active or not check_password_hash(found.password_hash, password):
        return None
    return user_row(found)


def people(session: Session) -> list[tuple[str, str]]:
    """(username, display name) of every user, for the person filter's suggestions."""
    return [(u, d or "") for u, d in session.execute(select(User.username, User.display_name))]
