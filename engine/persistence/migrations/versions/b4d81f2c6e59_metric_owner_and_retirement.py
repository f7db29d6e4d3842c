"""the metric catalogue's default owner and retirement

Revision ID: b4d81f2c6e59
Revises: b7e3f1a2c9d4
Create Date: 2026-12-01 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "b4d81f2c6e59"
down_revision = "b7e3f1a2c9d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("metric", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("metric", schema=None) as batch_op:
        batch_op.drop_column("active")
        batch_op.drop_column("owner")
