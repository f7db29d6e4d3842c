"""the register table holds the record of any process that declares one

Revision ID: 5b1e7c3a9d20
Revises: 0e99047c014d
Create Date: 2026-12-01 18:30:00
"""

from alembic import op

revision = "5b1e7c3a9d20"
down_revision = "0e99047c014d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("improvement_record", schema=None) as batch_op:
        batch_op.drop_index("ix_improvement_record_status")
    op.rename_table("improvement_record", "process_record")
    with op.batch_alter_table("process_record", schema=None) as batch_op:
        batch_op.create_index("ix_process_record_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("process_record", schema=None) as batch_op:
        batch_op.drop_index("ix_process_record_status")
    op.rename_table("process_record", "improvement_record")
    with op.batch_alter_table("improvement_record", schema=None) as batch_op:
        batch_op.create_index("ix_improvement_record_status", ["status"], unique=False)
