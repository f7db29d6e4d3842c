"""versions carry their forms and document control; drafts; the model log

Revision ID: 9a2f6c1d4e70
Revises: 3e8b5d1c7a42
Create Date: 2026-12-15 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import engine.persistence.models

revision = "9a2f6c1d4e70"
down_revision = "3e8b5d1c7a42"
branch_labels = None
depends_on = None

WHEN = engine.persistence.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("process_definition", schema=None) as batch_op:
        batch_op.add_column(sa.Column("forms", sa.JSON(none_as_null=True), nullable=True))
        batch_op.add_column(sa.Column("author", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("approved_by", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("change_note", sa.Text(), server_default="", nullable=False)
        )
    op.create_table(
        "model_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_id", sa.String(length=128), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("bpmn_xml", sa.Text(), nullable=False),
        sa.Column("forms", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("lint", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("submitted_at", WHEN, nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", WHEN, nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("model_draft", schema=None) as batch_op:
        batch_op.create_index("ix_model_draft_process_id", ["process_id"], unique=False)
        batch_op.create_index("ix_model_draft_status", ["status"], unique=False)
    op.create_table(
        "model_event",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("process_id", sa.String(length=128), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("payload", engine.persistence.models.EventPayload(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("model_event", schema=None) as batch_op:
        batch_op.create_index("ix_model_event_process_id", ["process_id"], unique=False)
    op.create_table(
        "model_log_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("model_log_head")
    with op.batch_alter_table("model_event", schema=None) as batch_op:
        batch_op.drop_index("ix_model_event_process_id")
    op.drop_table("model_event")
    with op.batch_alter_table("model_draft", schema=None) as batch_op:
        batch_op.drop_index("ix_model_draft_status")
        batch_op.drop_index("ix_model_draft_process_id")
    op.drop_table("model_draft")
    with op.batch_alter_table("process_definition", schema=None) as batch_op:
        batch_op.drop_column("change_note")
        batch_op.drop_column("approved_by")
        batch_op.drop_column("author")
        batch_op.drop_column("forms")
