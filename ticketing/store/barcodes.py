"""Finding the order of a barcode, for the gate (barcodes are unique across all tickets)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.store.tables import tickets


async def order_code_for_barcode(conn: AsyncConnection, barcode: str) -> str | None:
    row = (await conn.execute(sa.select(tickets.c.order_code).where(tickets.c.barcode == barcode))).first()
    return row.order_code if row else None
