"""an index for the header's counts of one's open and overdue tasks: role, assignee and
due date of the open tasks, so the count reads no table row

Revision ID: f2b8d4e6a1c7
Revises: e5c1a7b3d9f2
Create Date: 2026-12-01 23:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = "f2b8d4e6a1c7"
down_revision = "e5c1a7b3d9f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_human_task_mine",
        "human_task",
        ["role", "assignee", "due_at"],
        unique=False,
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("ix_human_task_mine", table_name="human_task")
