"""an instance's incident: why the worker could not move it on

Revision ID: 3e8b5d1c7a42
Revises: 7c4d2e9f1a30
Create Date: 2026-12-08 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "3e8b5d1c7a42"
down_revision = "7c4d2e9f1a30"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incident", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_column("incident")
