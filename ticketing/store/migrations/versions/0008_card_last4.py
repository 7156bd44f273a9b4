"""the card's last four digits on the order's payment, so buyers read "card ending 4242"

Nullable: imported and older orders may not have them; the buyer then reads "card".

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


# A plain ADD COLUMN on both databases: a batch (copy-and-rename) on SQLite would drop the
# order_search triggers of 0007 with the old table.


def upgrade() -> None:
    op.add_column("orders", sa.Column("card_last4", sa.String(4), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "card_last4")
