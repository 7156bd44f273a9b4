"""Order search: by email, name, order code or barcode, filtered by event."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.store.tables import orders, tickets


async def search_orders(
    conn: AsyncConnection, q: str | None, event_id: str | None, *, limit: int = 50, offset: int = 0
) -> list[str]:
    """Return matching order codes, newest first."""
    stmt = sa.select(orders.c.code).order_by(orders.c.created_at.desc(), orders.c.code)
    if event_id:
        stmt = stmt.where(orders.c.event_id == event_id)
    if q:
        term = q.strip()
        lowered = term.lower()
        by_barcode = sa.select(tickets.c.order_code).where(tickets.c.barcode == term)
        stmt = stmt.where(
            sa.or_(
                orders.c.code == term.upper(),
                orders.c.contact_email == lowered,
                orders.c.contact_name_search.contains(lowered, autoescape=True),
                orders.c.code.in_(by_barcode),
            )
        )
    rows = (await conn.execute(stmt.limit(limit).offset(offset))).all()
    return [r.code for r in rows]
