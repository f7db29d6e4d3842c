"""the register's derived columns (people, metric codes, gap status, due date) and the
indexes its filters and a record's readings read

Revision ID: b7e3f1a2c9d4
Revises: 9a2f6c1d4e70
Create Date: 2026-12-01 21:30:00
"""

import json
import os

import sqlalchemy as sa
from alembic import op

revision = "b7e3f1a2c9d4"
down_revision = "9a2f6c1d4e70"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_process_record_source", ["source"]),
    ("ix_process_record_raised_by", ["raised_by"]),
    ("ix_process_record_raised_on", ["raised_on"]),
    ("ix_process_record_closed_on", ["closed_on"]),
    ("ix_process_record_gap_status", ["gap_status"]),
)


def upgrade() -> None:
    with op.batch_alter_table("process_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("people", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("metric_codes", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("gap_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("due_on", sa.String(length=10), nullable=True))
        for name, columns in _INDEXES:
            batch_op.create_index(name, columns, unique=False)
    with op.batch_alter_table("metric_value", schema=None) as batch_op:
        batch_op.create_index(
            "ix_metric_value_instance", ["instance_id", "recorded_at"], unique=False
        )
    _backfill()


def _backfill() -> None:
    """Records kept before these columns existed get them from their instance's data, as
    the installation's pack declares them (the next command would, but closed records
    see none)."""
    from engine.pack import DEFAULT_PACK, load
    from engine.projections.records import columns_of

    columns = columns_of(load(os.environ.get("CSI_PACK") or DEFAULT_PACK).manifest)
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT process_record.id, instance.data FROM process_record "
            "JOIN instance ON instance.id = process_record.instance_id"
        )
    ).all()
    update = sa.text(
        "UPDATE process_record SET people = :people, metric_codes = :metric_codes, "
        "gap_status = :gap_status, due_on = :due_on WHERE id = :id"
    )
    for record_id, data in rows:
        if isinstance(data, str):
            data = json.loads(data)
        values = columns.values(data if isinstance(data, dict) else {})
        if any(v is not None for v in values.values()):
            connection.execute(
                update,
                {
                    "id": record_id,
                    "people": values.get("people"),
                    "metric_codes": values.get("metric_codes"),
                    "gap_status": values.get("gap_status"),
                    "due_on": values.get("due_on"),
                },
            )


def downgrade() -> None:
    with op.batch_alter_table("metric_value", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_value_instance")
    with op.batch_alter_table("process_record", schema=None) as batch_op:
        for name, _ in reversed(_INDEXES):
            batch_op.drop_index(name)
        batch_op.drop_column("due_on")
        batch_op.drop_column("gap_status")
        batch_op.drop_column("metric_codes")
        batch_op.drop_column("people")
