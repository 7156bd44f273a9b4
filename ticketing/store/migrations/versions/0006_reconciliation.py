"""reconciliation: runs, items (finance's queue) and the staging index of processor records

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ticketing.store.tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC = ticketing.store.tables.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "recon_runs",
        sa.Column("id", sa.String(length=300), nullable=False),
        sa.Column("processor", sa.String(length=20), nullable=False),
        sa.Column("window_start", UTC(timezone=True), nullable=False),
        sa.Column("window_end", UTC(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.String(length=300), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("totals", sa.JSON(), nullable=False),
        sa.Column("staged", sa.JSON(), nullable=False),
        sa.Column("healed", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.Column("open_items", sa.Integer(), nullable=False),
        sa.Column("report_uris", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("started_at", UTC(timezone=True), nullable=False),
        sa.Column("ended_at", UTC(timezone=True), nullable=True),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_runs")),
    )
    op.create_index(op.f("ix_recon_runs_processor"), "recon_runs", ["processor"], unique=False)
    op.create_index("ix_recon_runs_window", "recon_runs", ["processor", "window_start"], unique=False)
    op.create_table(
        "recon_items",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("processor", sa.String(length=20), nullable=False),
        sa.Column("cls", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("state_at", UTC(timezone=True), nullable=False),
        sa.Column("suggested_action", sa.String(length=40), nullable=False),
        sa.Column("ledger", sa.JSON(), nullable=True),
        sa.Column("processor_side", sa.JSON(), nullable=True),
        sa.Column("refund_id", sa.String(length=40), nullable=True),
        sa.Column("processor_refund_id", sa.String(length=100), nullable=True),
        sa.Column("order_code", sa.String(length=32), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("first_seen_run", sa.String(length=300), nullable=False),
        sa.Column("last_seen_run", sa.String(length=300), nullable=False),
        sa.Column("last_seen_pass", sa.Integer(), nullable=False),
        sa.Column("healed_at", UTC(timezone=True), nullable=True),
        sa.Column("healed_by_run", sa.String(length=300), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_items")),
    )
    op.create_index(op.f("ix_recon_items_cls"), "recon_items", ["cls"], unique=False)
    op.create_index(op.f("ix_recon_items_state"), "recon_items", ["state"], unique=False)
    op.create_index(op.f("ix_recon_items_refund_id"), "recon_items", ["refund_id"], unique=False)
    op.create_index(op.f("ix_recon_items_last_seen_run"), "recon_items", ["last_seen_run"], unique=False)
    op.create_table(
        "recon_staged",
        sa.Column("run_id", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("record_id", sa.String(length=100), nullable=False),
        sa.Column("ledger_refund_id", sa.String(length=40), nullable=True),
        sa.Column("idempotency_key", sa.String(length=320), nullable=True),
        sa.Column("link", sa.String(length=100), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "kind", "record_id", name=op.f("pk_recon_staged")),
    )
    op.create_index("ix_recon_staged_ledger", "recon_staged", ["run_id", "kind", "ledger_refund_id"], unique=False)
    op.create_index("ix_recon_staged_link", "recon_staged", ["run_id", "kind", "link"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_recon_staged_link", table_name="recon_staged")
    op.drop_index("ix_recon_staged_ledger", table_name="recon_staged")
    op.drop_table("recon_staged")
    op.drop_index(op.f("ix_recon_items_last_seen_run"), table_name="recon_items")
    op.drop_index(op.f("ix_recon_items_refund_id"), table_name="recon_items")
    op.drop_index(op.f("ix_recon_items_state"), table_name="recon_items")
    op.drop_index(op.f("ix_recon_items_cls"), table_name="recon_items")
    op.drop_table("recon_items")
    op.drop_index("ix_recon_runs_window", table_name="recon_runs")
    op.drop_index(op.f("ix_recon_runs_processor"), table_name="recon_runs")
    op.drop_table("recon_runs")
