"""a time slot is marked cancelled by its cancellation, before the orders are chosen

From then on no ticket of an order in that slot is transferred or accepted, so every order the
cancellation chooses stays the whole set (a replacement issued later would stay valid).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN with a server default on both databases (no batch copy on SQLite).
    op.add_column("time_slots", sa.Column("cancelled", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("time_slots", "cancelled")
