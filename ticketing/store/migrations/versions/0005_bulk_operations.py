"""bulk operations: bulk delivery and event cancellation, item by item

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ticketing.store.tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulk_operations",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("workflow_id", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("report_uri", sa.String(length=500), nullable=True),
        sa.Column("retry_of", sa.String(length=100), nullable=True),
        sa.Column("prepared_at", ticketing.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", ticketing.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", ticketing.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_bulk_operations_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_operations")),
    )
    op.create_index(op.f("ix_bulk_operations_event_id"), "bulk_operations", ["event_id"], unique=False)
    op.create_table(
        "bulk_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bulk_id", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column("refund_id", sa.String(length=40), nullable=True),
        sa.Column("updated_at", ticketing.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["bulk_id"], ["bulk_operations.id"], name=op.f("fk_bulk_items_bulk_id_bulk_operations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_items")),
        sa.UniqueConstraint("bulk_id", "key", name="uq_bulk_items_bulk_key"),
    )
    op.create_index("ix_bulk_items_bulk_status", "bulk_items", ["bulk_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bulk_items_bulk_status", table_name="bulk_items")
    op.drop_table("bulk_items")
    op.drop_index(op.f("ix_bulk_operations_event_id"), table_name="bulk_operations")
    op.drop_table("bulk_operations")
