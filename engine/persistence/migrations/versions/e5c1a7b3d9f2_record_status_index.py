"""the record's status index also holds closed_on, so the register's counts per stage
and state are read from the index alone

Revision ID: e5c1a7b3d9f2
Revises: d4a8c2e6f1b3
Create Date: 2026-12-01 23:00:00
"""

from alembic import op

revision = "e5c1a7b3d9f2"
down_revision = "d4a8c2e6f1b3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("process_record") as batch_op:
        batch_op.drop_index("ix_process_record_status")
        batch_op.create_index("ix_process_record_status", ["status", "closed_on"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("process_record") as batch_op:
        batch_op.drop_index("ix_process_record_status")
        batch_op.create_index("ix_process_record_status", ["status"], unique=False)
