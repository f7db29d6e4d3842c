"""Users as sign-in, administration and the audit console's person filter read them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import passwords
from engine.errors import NotFound
from engine.persistence.models import EndedSession, User
from engine.queries.views import UserRow


def user_row(user: User) -> UserRow:
    return UserRow(
        user.id,
        user.username,
        user.display_name,
        tuple(user.roles or ()),
        bool(user.active),
        user.locale,
        user.created_at,
        user.session_generation or 0,
        user.email,
        bool(user.email_notifications),
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


def still_signed_in(
    session: Session, user_id: int, generation: int, session_id: str | None = None
) -> UserRow | None:
    """The active user of a session or token issued at `generation`, unless that
    generation has passed or the session (`session_id`) was logged out of."""
    found = active_user(session, user_id)
    if found is None or found.generation != generation:
        return None
    if session_id is not None and session.get(EndedSession, session_id) is not None:
        return None
    return found


def signed_in(session: Session, username: str, password: str) -> UserRow | None:
    """The active user whose password this is, else None. Unknown and deactivated users
    cost the same one hash check as a wrong password (engine.passwords)."""
    found = session.scalar(select(User).where(User.username == username))
    if not passwords.matches(found.password_hash if found is not None else None, password):
        return None
    if found is None or not found.active:
        return None
    return user_row(found)


def people(session: Session) -> list[tuple[str, str]]:
    """(username, display name) of every user, for the person filter's suggestions."""
    return [(u, d or "") for u, d in session.execute(select(User.username, User.display_name))]
