"""refunds by processor and created time: the ledger side of a reconciliation or audit window

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_refunds_processor_created_at", "refunds", ["processor", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_refunds_processor_created_at", table_name="refunds")
