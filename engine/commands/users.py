"""User administration: create and update users (Admin only).

Each command owns its transaction and raises `Forbidden` when the actor is not an
administrator, `ValidationFailed` with `details` = {field: [code]}
when the input is invalid (the codes below and engine.passwords'; the web layer words
them), `NotFound` for an unknown user. An administrator can neither drop their own
Admin role nor deactivate themselves, so the system never loses its last way in by
accident.

Sessions and API tokens carry the user's session generation: changing the password,
deactivating the user and "log out everywhere" bump it, which ends every session and
token issued before. Logging out ends one session: its id is kept as ended for as
long as a copy of its cookie could still be presented.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import passwords
from engine.access import Actor
from engine.commands.context import CommandContext
from engine.errors import NotFound, ValidationFailed
from engine.notifications.notices import clean_email
from engine.persistence.models import EndedSession, User
from engine.roles import ADMIN, RoleBook

MAX_DISPLAY_NAME = 128
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

# Error codes in ValidationFailed.details
REQUIRED = "required"
INVALID_USERNAME = "invalid_username"
TAKEN = "taken"
TOO_LONG = "too_long"
UNKNOWN_ROLE = "unknown_role"
OWN_ADMIN_ROLE = "own_admin_role"
OWN_ACTIVE = "own_active"


def ordered_roles(book: RoleBook, roles: Iterable[str], errors: dict[str, list[str]]) -> list[str]:
    """The roles chosen, in the book's order; an unknown one is an error."""
    chosen = set(roles)
    if chosen - set(book.all):
        errors.setdefault("roles", []).append(UNKNOWN_ROLE)
    return [key for key in book.all if key in chosen]


def _check_display_name(display_name: str, errors: dict[str, list[str]]) -> str:
    display_name = display_name.strip()
    if len(display_name) > MAX_DISPLAY_NAME:
        errors.setdefault("display_name", []).append(TOO_LONG)
    return display_name


def _check_password(
    password: str | None, username: str, required: bool, errors: dict[str, list[str]]
) -> None:
    if not password:
        if required:
            errors.setdefault("password", []).append(REQUIRED)
    elif found := passwords.problems(password, username):
        errors.setdefault("password", []).extend(found)


def _raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationFailed("the user data is not valid", errors)


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create of the same username
        raise ValidationFailed("the username is taken", {"username": [TAKEN]}) from exc


def create_user(
    ctx: CommandContext,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    roles: Iterable[str],
    active: bool,
    password: str,
    email: str | None = None,
) -> int:
    """A new user; returns its id."""
    ctx.policy.require_administer(actor)
    with ctx.db.transaction() as session:
        errors: dict[str, list[str]] = {}
        username = username.strip()
        if not username:
            errors["username"] = [REQUIRED]
        elif not USERNAME.match(username):
            errors["username"] = [INVALID_USERNAME]
        elif session.scalar(select(User.id).where(User.username == username)) is not None:
            errors["username"] = [TAKEN]
        display_name = _check_display_name(display_name, errors)
        ordered = ordered_roles(ctx.pack.roles, roles, errors)
        _check_password(password, username, True, errors)
        address = clean_email(email, errors)
        _raise_if(errors)
        user = User(
            email=address,
            username=username,
            display_name=display_name or username,
            password_hash=passwords.hash_password(password),
            roles=ordered,
            active=active,
        )
        session.add(user)
        _flush(session)
        return user.id


def update_user(
    ctx: CommandContext,
    actor: Actor,
    user_id: int,
    *,
    display_name: str,
    roles: Iterable[str],
    active: bool,
    password: str | None = None,
    email: str | None = None,
) -> None:
    """Change a user; `email` None keeps the address, "" removes it."""
    ctx.policy.require_administer(actor)
    with ctx.db.transaction() as session:
        _update(session, ctx.pack.roles, actor, user_id, display_name, roles, active, password)
        if email is not None:
            errors: dict[str, list[str]] = {}
            address = clean_email(email, errors)
            _raise_if(errors)
            session.execute(update(User).where(User.id == user_id).values(email=address))


def _update(
    session: Session,
    book: RoleBook,
    actor: Actor,
    user_id: int,
    display_name: str,
    roles: Iterable[str],
    active: bool,
    password: str | None,
) -> None:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    errors: dict[str, list[str]] = {}
    display_name = _check_display_name(display_name, errors)
    ordered = ordered_roles(book, roles, errors)
    _check_password(password, user.username, False, errors)
    if user.username == actor.username:
        if ADMIN not in ordered:
            errors.setdefault("roles", []).append(OWN_ADMIN_ROLE)
        if not active:
            errors.setdefault("active", []).append(OWN_ACTIVE)
    _raise_if(errors)
    if password or (user.active and not active):
        end_every_session(user)
    user.display_name = display_name or user.username
    user.roles = ordered
    user.active = active
    if password:
        user.password_hash = passwords.hash_password(password)
    _flush(session)


def end_every_session(user: User) -> None:
    """Every session and API token issued to `user` so far stops working."""
    user.session_generation = (user.session_generation or 0) + 1


def log_out_everywhere(ctx: CommandContext, user_id: int) -> None:
    """The user's own "log out everywhere": each person may end their own sessions."""
    with ctx.db.transaction() as session:
        session.execute(
            update(User)
            .where(User.id == user_id)
            .values(session_generation=User.session_generation + 1)
        )


def end_session(ctx: CommandContext, user_id: int, session_id: str, keep: timedelta) -> None:
    """One session ends (log out): its id is refused from now on. A copy of its cookie is
    refused anyway once it is older than `keep` (the cookie's lifetime), so ended ids
    older than that are forgotten here."""
    now = ctx.clock()
    with ctx.db.transaction() as session:
        session.execute(delete(EndedSession).where(EndedSession.ended_at < now - keep))
        if session.get(EndedSession, session_id) is None:
            session.add(EndedSession(session_id=session_id, user_id=user_id, ended_at=now))
