"""User administration: list, create and update users (Admin only).

Each function runs inside the caller's transaction and raises `Forbidden` when the
actor is not an administrator, `ValidationFailed` with `details` = {field: [code]}
when the input is invalid (the codes below; the web layer words them), `NotFound`
for an unknown user. An administrator can neither drop their own Admin role nor
deactivate themselves, so the system never loses its last way in by accident.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from engine.errors import Forbidden, NotFound, ValidationFailed
from engine.roles import ADMIN, ALL_ROLES
from engine.store import User

if TYPE_CHECKING:
    from engine.runtime import Actor

MIN_PASSWORD = 8
MAX_DISPLAY_NAME = 128
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

# Error codes in ValidationFailed.details
REQUIRED = "required"
INVALID_USERNAME = "invalid_username"
TAKEN = "taken"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
UNKNOWN_ROLE = "unknown_role"
OWN_ADMIN_ROLE = "own_admin_role"
OWN_ACTIVE = "own_active"


def _require_admin(actor: Actor) -> None:
    if ADMIN not in actor.roles:
        raise Forbidden("only an administrator may manage users")


def list_users(session: Session, actor: Actor) -> list[User]:
    _require_admin(actor)
    return list(session.scalars(select(User).order_by(User.username)))


def get_user(session: Session, actor: Actor, user_id: int) -> User:
    _require_admin(actor)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def _ordered_roles(roles: Iterable[str], errors: dict[str, list[str]]) -> list[str]:
    chosen = set(roles)
    if chosen - set(ALL_ROLES):
        errors.setdefault("roles", []).append(UNKNOWN_ROLE)
    return [key for key in ALL_ROLES if key in chosen]


def _check_display_name(display_name: str, errors: dict[str, list[str]]) -> str:
    display_name = display_name.strip()
    if len(display_name) > MAX_DISPLAY_NAME:
        errors.setdefault("display_name", []).append(TOO_LONG)
    return display_name


def _check_password(password: str | None, required: bool, errors: dict[str, list[str]]) -> None:
    if not password:
        if required:
            errors.setdefault("password", []).append(REQUIRED)
    elif len(password) < MIN_PASSWORD:
        errors.setdefault("password", []).append(TOO_SHORT)


def _raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationFailed("the user data is not valid", errors)


def _flush(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent create of the same username
        raise ValidationFailed("the username is taken", {"username": [TAKEN]}) from exc


def create_user(
    session: Session,
    actor: Actor,
    *,
    username: str,
    display_name: str,
    roles: Iterable[str],
    active: bool,
    password: str,
) -> User:
    _require_admin(actor)
    errors: dict[str, list[str]] = {}
    username = username.strip()
    if not username:
        errors["username"] = [REQUIRED]
    elif not USERNAME.match(username):
        errors["username"] = [INVALID_USERNAME]
    elif session.scalar(select(User.id).where(User.username == username)) is not None:
        errors["username"] = [TAKEN]
    display_name = _check_display_name(display_name, errors)
    ordered = _ordered_roles(roles, errors)
    _check_password(password, True, errors)
    _raise_if(errors)
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=generate_password_hash(password),
        roles=ordered,
        active=active,
    )
    session.add(user)
    _flush(session)
    return user


def update_user(
    session: Session,
    actor: Actor,
    user_id: int,
    *,
    display_name: str,
    roles: Iterable[str],
    active: bool,
    password: str | None = None,
) -> User:
    user = get_user(session, actor, user_id)
    errors: dict[str, list[str]] = {}
    display_name = _check_display_name(display_name, errors)
    ordered = _ordered_roles(roles, errors)
    _check_password(password, False, errors)
    if user.username == actor.username:
        if ADMIN not in ordered:
            errors.setdefault("roles", []).append(OWN_ADMIN_ROLE)
        if not active:
            errors.setdefault("active", []).append(OWN_ACTIVE)
    _raise_if(errors)
    user.display_name = display_name or user.username
    user.roles = ordered
    user.active = active
    if password:
        user.password_hash = generate_password_hash(password)
    _flush(session)
    return user
