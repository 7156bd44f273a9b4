"""ticket transfers (who a ticket is offered to, until when, what it became) and staged import rows

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ticketing.store.tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticket_transfers",
        sa.Column("id", sa.String(length=300), nullable=False),
        sa.Column("order_code", sa.String(length=32), nullable=False),
        sa.Column("ticket_id", sa.String(length=40), nullable=False),
        sa.Column("recipient_name", sa.String(length=200), nullable=True),
        sa.Column("recipient_email", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("expires_at", ticketing.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("new_order_code", sa.String(length=32), nullable=True),
        sa.Column("new_ticket_id", sa.String(length=40), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", ticketing.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", ticketing.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_code"], ["orders.code"], name=op.f("fk_ticket_transfers_order_code_orders")),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_transfers_ticket_id_tickets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_transfers")),
    )
    for column in ("order_code", "ticket_id", "status"):
        op.create_index(op.f(f"ix_ticket_transfers_{column}"), "ticket_transfers", [column], unique=False)
    op.create_table(
        "import_rows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bulk_id", sa.String(length=100), nullable=False),
        sa.Column("order_code", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["bulk_id"], ["bulk_operations.id"], name=op.f("fk_import_rows_bulk_id_bulk_operations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_rows")),
        sa.UniqueConstraint("bulk_id", "order_code", name="uq_import_rows_bulk_code"),
    )


def downgrade() -> None:
    op.drop_table("import_rows")
    for column in ("order_code", "ticket_id", "status"):
        op.drop_index(op.f(f"ix_ticket_transfers_{column}"), table_name="ticket_transfers")
    op.drop_table("ticket_transfers")
