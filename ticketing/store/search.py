"""Order search: by any part of an email address or name, an order code or a barcode; filtered by event and status.

Parts of three characters or more go through a trigram index (pg_trgm on
PostgreSQL, an FTS5 trigram table on SQLite: migration 0007), so a search
stays an index lookup at a million orders; shorter parts match prefixes
through the ordinary indexes.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.states import OrderStatus
from ticketing.store.tables import orders, tickets

TRIGRAM = 3
_LAST_CODE_POINT = "\U0010ffff"  # sorts after every character in UTF-8 byte order
_order_search = sa.table("order_search", sa.column("code"), sa.column("order_search"))


def _escaped(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix(column: sa.Column[str], lowered: str) -> sa.ColumnElement[bool]:
    """`column` starts with `lowered`, as a range SQLite's b-tree index can serve (its LIKE cannot)."""
    return sa.and_(column >= lowered, column < lowered + _LAST_CODE_POINT)


def _by_part(conn: AsyncConnection, lowered: str) -> sa.ColumnElement[bool]:
    postgres = conn.dialect.name == "postgresql"
    if len(lowered) < TRIGRAM and not postgres:
        return sa.or_(_prefix(orders.c.contact_email, lowered), _prefix(orders.c.contact_name_search, lowered))
    if len(lowered) < TRIGRAM:  # pg_trgm pads the start of a string, so its index serves an anchored LIKE
        prefix = _escaped(lowered) + "%"
        return sa.or_(
            orders.c.contact_email.like(prefix, escape="\\"), orders.c.contact_name_search.like(prefix, escape="\\")
        )
    if postgres:
        part = "%" + _escaped(lowered) + "%"
        return sa.or_(
            orders.c.contact_email.like(part, escape="\\"), orders.c.contact_name_search.like(part, escape="\\")
        )
    phrase = '"' + lowered.replace('"', '""') + '"'  # an FTS5 string: matched as a substring by the trigram tokenizer
    matches = sa.select(_order_search.c.code).where(sa.text("order_search MATCH :phrase").bindparams(phrase=phrase))
    return orders.c.code.in_(matches)


async def search_orders(
    conn: AsyncConnection,
    q: str | None,
    event_id: str | None,
    *,
    status: OrderStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[str]:
    """Return matching order codes, newest first."""
    stmt = sa.select(orders.c.code).order_by(orders.c.created_at.desc(), orders.c.code)
    if event_id:
        stmt = stmt.where(orders.c.event_id == event_id)
    if status is not None:
        stmt = stmt.where(orders.c.status == status.value)
    term = (q or "").strip()
    if term:
        lowered = term.lower()
        by_barcode = sa.select(tickets.c.order_code).where(tickets.c.barcode == term)
        stmt = stmt.where(
            sa.or_(orders.c.code == term.upper(), orders.c.code.in_(by_barcode), _by_part(conn, lowered))
        )
    rows = (await conn.execute(stmt.limit(limit).offset(offset))).all()
    return [r.code for r in rows]
