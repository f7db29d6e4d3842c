"""What each person does with their own notices: read them, and say where (and
whether) e-mail should reach them."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import update

from engine.access import Actor
from engine.commands.context import CommandContext
from engine.errors import ValidationFailed
from engine.persistence.models import Notification, User

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 254
INVALID_EMAIL = "invalid_email"


def clean_email(value: Any, errors: dict[str, list[str]]) -> str | None:
    """An address as stored (None for none), or an error noted under `email`."""
    text = str(value or "").strip()
    if not text:
        return None
    if len(text) > MAX_EMAIL or not EMAIL.match(text):
        errors.setdefault("email", []).append(INVALID_EMAIL)
    return text


def mark_read(ctx: CommandContext, actor: Actor, ids: list[int] | None = None) -> int:
    """Mark the actor's notices read (all of them when `ids` is None). A read-only
    account (an auditor) changes nothing, this neither."""
    ctx.policy.require_writer(actor)
    with ctx.db.transaction() as session:
        statement = (
            update(Notification)
            .where(Notification.recipient == actor.username, Notification.read_at.is_(None))
            .values(read_at=ctx.clock())
        )
        if ids is not None:
            statement = statement.where(Notification.id.in_(ids))
        return max(session.execute(statement).rowcount or 0, 0)  # type: ignore[attr-defined]


def set_my_email(ctx: CommandContext, actor: Actor, email: Any, notifications: bool) -> None:
    """One's own address and e-mail switch (everyone who may change anything may
    change their own)."""
    ctx.policy.require_writer(actor)
    errors: dict[str, list[str]] = {}
    address = clean_email(email, errors)
    if errors:
        raise ValidationFailed("the e-mail address is not valid", errors)
    with ctx.db.transaction() as session:
        session.execute(
            update(User)
            .where(User.username == actor.username)
            .values(email=address, email_notifications=bool(notifications))
        )
