"""Writing notifications: the rows a command or the worker's pass adds to the outbox.

Who is told: the person a task is claimed by or assigned to, else every active user
holding the task's role (as the inbox shows it to them). The person whose own command
opened a task is not told of it: they are looking at it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, exists, select, text
from sqlalchemy.orm import Session

from engine.persistence.instances import HUMAN_TASK
from engine.persistence.models import Notification, UTCDateTime, table

TASK_ARRIVED = "task_arrived"
DUE_TOMORROW = "due_tomorrow"
OVERDUE = "overdue"
KINDS = (TASK_ARRIVED, DUE_TOMORROW, OVERDUE)
REMIND_BEFORE = timedelta(days=1)

_COLUMNS = (
    "recipient, kind, task_id, instance_id, link, created_at, "
    "email_status, email_attempts, email_next_at, webhook_status, webhook_attempts, webhook_next_at"
)
# Whether app_user `u` holds role `role_expr`: roles are a JSON list.
_HOLDS = {
    "postgresql": "CAST(u.roles AS JSONB) @> jsonb_build_array(CAST({role} AS TEXT))",
    "sqlite": "EXISTS (SELECT 1 FROM json_each(u.roles) WHERE json_each.value = {role})",
}


def _dialect(session: Session) -> str:
    return "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"


def _arrived(dialect: str) -> Any:
    holds = _HOLDS[dialect].format(role=":role")
    # Built of this module's constants only; every value is a bound parameter.
    return text(
        f"INSERT INTO notification ({_COLUMNS}) "  # noqa: S608
        "SELECT u.username, 'task_arrived', :task_id, :instance_id, :link, :now, "
        "'pending', 0, :now, 'pending', 0, :now FROM app_user u "
        f"WHERE u.active AND u.username <> :actor AND {holds} "
        "AND (CAST(:assignee AS VARCHAR(64)) IS NULL OR u.username = :assignee) "
        "ON CONFLICT DO NOTHING"
    ).bindparams(bindparam("now", type_=UTCDateTime()))


_ARRIVED = {d: _arrived(d) for d in _HOLDS}


def task_link(task_id: str) -> str:
    return f"/tasks/{task_id}"


def task_arrived(
    session: Session, rows: list[dict[str, Any]], actor: str | None
) -> list[tuple[Any, Any]]:
    """The statements telling the people of each new task (rows as engine.projections.
    tasks writes them) that it arrived, for the command's buffered writes."""
    params = [
        {
            "task_id": row["id"],
            "instance_id": row["instance_id"],
            "link": task_link(row["id"]),
            "now": row["created_at"],
            "role": row["role"],
            "assignee": row["assignee"],
            "actor": actor or "",
        }
        for row in rows
        if row.get("role")
    ]
    return [(_ARRIVED[_dialect(session)], params)] if params else []


def _reminders(dialect: str) -> Any:
    holds = _HOLDS[dialect].format(role="t.role")
    return text(
        f"INSERT INTO notification ({_COLUMNS}) "  # noqa: S608
        "SELECT u.username, CAST(:kind AS VARCHAR(32)), t.id, t.instance_id, '/tasks/' || t.id, :now, "
        "'pending', 0, :now, 'pending', 0, :now "
        "FROM human_task t JOIN app_user u ON u.active AND ("
        "  (t.claimed_by IS NOT NULL AND u.username = t.claimed_by)"
        f"  OR (t.claimed_by IS NULL AND {holds}"
        "      AND (t.assignee IS NULL OR u.username = t.assignee)))"
        " WHERE t.id IN :ids"
        " AND NOT EXISTS (SELECT 1 FROM notification n"
        "   WHERE n.task_id = t.id AND n.kind = CAST(:kind AS VARCHAR(32)) AND n.recipient = u.username)"
        " ON CONFLICT DO NOTHING"
    ).bindparams(bindparam("ids", expanding=True), bindparam("now", type_=UTCDateTime()))


_REMINDERS = {d: _reminders(d) for d in _HOLDS}
NOTIFICATION = table(Notification)
# Open tasks due in a window that no one was yet told of in this way (the unique key's
# index answers the NOT EXISTS).
_DUE = (
    select(HUMAN_TASK.c.id, HUMAN_TASK.c.created_at, HUMAN_TASK.c.due_at)
    .where(
        HUMAN_TASK.c.status == "open",
        HUMAN_TASK.c.due_at.is_not(None),
        HUMAN_TASK.c.due_at > bindparam("after"),
        HUMAN_TASK.c.due_at <= bindparam("until"),
        ~exists().where(
            NOTIFICATION.c.task_id == HUMAN_TASK.c.id, NOTIFICATION.c.kind == bindparam("kind")
        ),
    )
    .order_by(HUMAN_TASK.c.due_at)
    .limit(2000)
)
_EVER = datetime(1970, 1, 1, tzinfo=UTC)


def add_reminders(session: Session, now: datetime) -> int:
    """Notices for open tasks due within a day and for those overdue, once each per
    person. A task that was already due within a day when it arrived gets no "due
    tomorrow": its arrival said when it is due."""
    windows = {DUE_TOMORROW: (now, now + REMIND_BEFORE), OVERDUE: (_EVER, now)}
    chosen: dict[str, list[str]] = {}
    for kind, (after, until) in windows.items():
        rows = session.execute(_DUE, {"kind": kind, "after": after, "until": until})
        chosen[kind] = [
            task_id
            for task_id, created_at, due_at in rows
            if kind == OVERDUE or created_at < due_at - REMIND_BEFORE
        ]
    statement = _REMINDERS[_dialect(session)]
    added = 0
    for kind, ids in chosen.items():
        for start in range(0, len(ids), 500):
            result = session.execute(
                statement, {"kind": kind, "now": now, "ids": ids[start : start + 500]}
            )
            added += max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
    return added
