"""the dashboard's columns on the record row (each metric's gap status, the calls'
outcomes, the verification's verdict, the quarter closed and the days it took) and
the indexes its figures group by

Revision ID: d4a8c2e6f1b3
Revises: b7d3e2a9c514
Create Date: 2026-12-01 22:10:00
"""

import json
import os
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "d4a8c2e6f1b3"
down_revision = "b7d3e2a9c514"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("gaps", sa.Text()),
    ("outcomes", sa.Text()),
    ("outcomes_quarter", sa.String(length=7)),
    ("verdict", sa.String(length=16)),
    ("verdict_quarter", sa.String(length=7)),
    ("closed_quarter", sa.String(length=7)),
    ("cycle_days", sa.Integer()),
)
_INDEXES = (
    ("ix_process_record_open_stage", ["closed_on", "status"]),
    ("ix_process_record_cycle", ["closed_quarter", "cycle_days"]),
    ("ix_process_record_outcomes", ["outcomes_quarter", "outcomes"]),
    ("ix_process_record_verdict", ["verdict_quarter", "verdict"]),
    ("ix_process_record_open_gaps", ["closed_on", "gaps"]),
    ("ix_process_record_open_due", ["closed_on", "due_on"]),
)


def upgrade() -> None:
    with op.batch_alter_table("process_record", schema=None) as batch_op:
        for name, type_ in _COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        for name, columns in _INDEXES:
            batch_op.create_index(name, columns, unique=False)
    op.create_index(
        "ix_human_task_overdue",
        "human_task",
        ["due_at", "role", "assignee", "claimed_by", "instance_id"],
        unique=False,
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )
    _backfill()


def _quarter(at: datetime) -> str:
    return f"{at.year:04d}-Q{(at.month - 1) // 3 + 1}"


def _moment(value: object) -> datetime | None:
    """A stored time as SQLite (text) or PostgreSQL (datetime) hands it back, in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _backfill() -> None:
    """Records kept before these columns existed get them from their instance's data
    and dates; outcomes recorded before are counted in the quarter the instance last
    changed in."""
    from engine.pack import DEFAULT_PACK, load
    from engine.projections.records import columns_of

    columns = columns_of(load(os.environ.get("CSI_PACK") or DEFAULT_PACK).manifest)
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT process_record.id, process_record.raised_on, process_record.closed_on, "
            "instance.data, instance.updated_at FROM process_record "
            "JOIN instance ON instance.id = process_record.instance_id"
        )
    ).all()
    names = [name for name, _ in _COLUMNS]
    update = sa.text(
        "UPDATE process_record SET "
        + ", ".join(f"{name} = :{name}" for name in names)
        + " WHERE id = :id"
    )
    for record_id, raised, closed, data, updated in rows:
        if isinstance(data, str):
            data = json.loads(data)
        values = columns.values(data if isinstance(data, dict) else {})
        changes: dict[str, object] = {name: values.get(name) for name in names}
        updated_at, raised_on, closed_on = _moment(updated), _moment(raised), _moment(closed)
        if changes["outcomes"] and updated_at is not None:
            changes["outcomes_quarter"] = _quarter(updated_at)
        if changes["verdict"] and not changes["verdict_quarter"] and updated_at is not None:
            changes["verdict_quarter"] = _quarter(updated_at)
        if closed_on is not None:
            changes["closed_quarter"] = _quarter(closed_on)
            if raised_on is not None:
                changes["cycle_days"] = max(0, (closed_on - raised_on).days)
        if any(v is not None for v in changes.values()):
            connection.execute(update, {"id": record_id, **changes})


def downgrade() -> None:
    op.drop_index("ix_human_task_overdue", table_name="human_task")
    with op.batch_alter_table("process_record", schema=None) as batch_op:
        for name, _ in reversed(_INDEXES):
            batch_op.drop_index(name)
        for name, _ in reversed(_COLUMNS):
            batch_op.drop_column(name)
