"""the rows of an upload being checked, until the file is whole (streamed imports)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ticketing.store.tables

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_staging",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("staging_id", sa.String(length=64), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("order_code", sa.String(length=32), nullable=True),
        sa.Column("first_row", sa.Integer(), nullable=False),
        sa.Column("cells", sa.JSON(), nullable=False),
        sa.Column("created_at", ticketing.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_staging")),
    )
    op.create_index("ix_import_staging_code", "import_staging", ["staging_id", "order_code", "row"], unique=False)
    op.create_index("ix_import_staging_order", "import_staging", ["staging_id", "first_row", "row"], unique=False)
    op.create_index("ix_import_staging_created_at", "import_staging", ["created_at"], unique=False)


def downgrade() -> None:
    for name in ("ix_import_staging_created_at", "ix_import_staging_order", "ix_import_staging_code"):
        op.drop_index(name, table_name="import_staging")
    op.drop_table("import_staging")
