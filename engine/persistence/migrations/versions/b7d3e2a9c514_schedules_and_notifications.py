"""periodic review schedules; the notification outbox; users' e-mail

Revision ID: b7d3e2a9c514
Revises: b4d81f2c6e59
Create Date: 2026-12-20 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import engine.persistence.models

revision = "b7d3e2a9c514"
down_revision = "b4d81f2c6e59"
branch_labels = None
depends_on = None

WHEN = engine.persistence.models.UTCDateTime(timezone=True)
LONG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.add_column(
            sa.Column(
                "email_notifications", sa.Boolean(), server_default=sa.true(), nullable=False
            )
        )
    with op.batch_alter_table("human_task", schema=None) as batch_op:
        batch_op.create_index(
            "ix_human_task_due",
            ["due_at"],
            unique=False,
            postgresql_where=sa.text("status = 'open' AND due_at IS NOT NULL"),
            sqlite_where=sa.text("status = 'open' AND due_at IS NOT NULL"),
        )
    op.create_table(
        "review_schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("process_id", sa.String(length=128), nullable=False),
        sa.Column("period", sa.String(length=128), nullable=False),
        sa.Column("recurrence", sa.String(length=128), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("process_owners", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "review_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("period_start", WHEN, nullable=False),
        sa.Column("period_label", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("started_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instance.id"]),
        sa.ForeignKeyConstraint(["schedule_id"], ["review_schedule.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule_id", "period_start"),
    )
    op.create_table(
        "notification",
        sa.Column("id", LONG_ID, nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=True),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("link", sa.String(length=256), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("read_at", WHEN, nullable=True),
        sa.Column("email_status", sa.String(length=16), nullable=False),
        sa.Column("email_attempts", sa.Integer(), nullable=False),
        sa.Column("email_next_at", WHEN, nullable=False),
        sa.Column("email_sent_at", WHEN, nullable=True),
        sa.Column("email_error", sa.Text(), nullable=True),
        sa.Column("webhook_status", sa.String(length=16), nullable=False),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False),
        sa.Column("webhook_next_at", WHEN, nullable=False),
        sa.Column("webhook_sent_at", WHEN, nullable=True),
        sa.Column("webhook_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("task_id", "kind", "recipient", name="uq_notification_once"),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_recipient", ["recipient", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_notification_email_due",
            ["email_next_at"],
            unique=False,
            postgresql_where=sa.text("email_status = 'pending'"),
            sqlite_where=sa.text("email_status = 'pending'"),
        )
        batch_op.create_index(
            "ix_notification_webhook_due",
            ["webhook_next_at"],
            unique=False,
            postgresql_where=sa.text("webhook_status = 'pending'"),
            sqlite_where=sa.text("webhook_status = 'pending'"),
        )


def downgrade() -> None:
    op.drop_table("notification")
    op.drop_table("review_run")
    op.drop_table("review_schedule")
    with op.batch_alter_table("human_task", schema=None) as batch_op:
        batch_op.drop_index("ix_human_task_due")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_column("email_notifications")
        batch_op.drop_column("email")
