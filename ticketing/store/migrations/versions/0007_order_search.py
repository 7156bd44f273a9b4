"""order search by any part of an email address or name, with an index on both databases

PostgreSQL: trigram GIN indexes (pg_trgm) on the lower-cased email and name,
so `LIKE '%part%'` is an index scan. SQLite: an FTS5 table with the trigram
tokenizer, kept in step with `orders` by triggers.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_SQLITE = [
    "CREATE VIRTUAL TABLE order_search USING fts5(code UNINDEXED, email, name, tokenize='trigram')",
    "INSERT INTO order_search(rowid, code, email, name) SELECT rowid, code, contact_email, contact_name_search FROM orders",
    """CREATE TRIGGER order_search_insert AFTER INSERT ON orders BEGIN
        INSERT INTO order_search(rowid, code, email, name)
        VALUES (new.rowid, new.code, new.contact_email, new.contact_name_search);
    END""",
    """CREATE TRIGGER order_search_delete AFTER DELETE ON orders BEGIN
        DELETE FROM order_search WHERE rowid = old.rowid;
    END""",
    """CREATE TRIGGER order_search_update AFTER UPDATE OF contact_email, contact_name_search ON orders BEGIN
        UPDATE order_search SET email = new.contact_email, name = new.contact_name_search WHERE rowid = old.rowid;
    END""",
]

_POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_orders_contact_email_trgm ON orders USING gin (contact_email gin_trgm_ops)",
    "CREATE INDEX ix_orders_contact_name_trgm ON orders USING gin (contact_name_search gin_trgm_ops)",
]


def upgrade() -> None:
    for statement in _POSTGRES if op.get_bind().dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_orders_contact_name_trgm")
        op.execute("DROP INDEX IF EXISTS ix_orders_contact_email_trgm")
        return
    for name in ("order_search_update", "order_search_delete", "order_search_insert"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS order_search")
