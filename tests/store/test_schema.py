"""The migrations build the schema `ticketing/store/tables.py` declares, on SQLite and PostgreSQL:
a column or index added to one and not the other fails here."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ticketing.store.engine import Store
from ticketing.store.tables import metadata


def _dialect_only(diff: Any) -> bool:
    """What migration 0007 makes by hand for order search, one kind per store: SQLite's FTS5 tables,
    PostgreSQL's trigram indexes. Not in the metadata, on purpose."""
    kind, obj = diff[0], diff[1]
    if kind == "remove_table":
        return str(obj.name).startswith("order_search")
    return kind == "remove_index" and str(obj.name).endswith("_trgm")


async def test_migrations_build_the_tables_the_code_declares(any_store: Store) -> None:
    async with any_store.read() as conn:
        diffs = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), metadata)
        )
    assert [d for d in diffs if not _dialect_only(d)] == []
