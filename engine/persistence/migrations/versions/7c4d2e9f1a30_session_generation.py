"""sessions end: a per-user session generation and the sessions logged out of

Revision ID: 7c4d2e9f1a30
Revises: 5b1e7c3a9d20
Create Date: 2026-12-08 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import engine.persistence.models

revision = "7c4d2e9f1a30"
down_revision = "5b1e7c3a9d20"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False)
        )
    op.create_table(
        "ended_session",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "ended_at", engine.persistence.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("session_id"),
    )
    with op.batch_alter_table("ended_session", schema=None) as batch_op:
        batch_op.create_index("ix_ended_session_ended_at", ["ended_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ended_session", schema=None) as batch_op:
        batch_op.drop_index("ix_ended_session_ended_at")
    op.drop_table("ended_session")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
