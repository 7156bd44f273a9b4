"""Personalisation rounds, read from the order's history.

Each reset appends one `personalisation-opened` event in the transaction that clears the
tickets, so the number of those events is the current round: as consistent as a column would
be, without a second place to keep in step. The event's dedupe key (one per operation) lets
a retried reset find the round it already opened instead of opening another.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.models import OrderEvent
from ticketing.store.tables import order_events

OPENED = "personalisation-opened"


def opened_key(operation_id: str) -> str:
    return f"{OPENED}:{operation_id}"


async def current_round(conn: AsyncConnection, order_code: str) -> int:
    """0 until personalisation was first opened; links of any other round are superseded."""
    stmt = sa.select(sa.func.count()).where(order_events.c.order_code == order_code, order_events.c.type == OPENED)
    return int((await conn.execute(stmt)).scalar_one())


async def opened_by(conn: AsyncConnection, operation_id: str) -> OrderEvent | None:
    stmt = sa.select(order_events).where(order_events.c.dedupe_key == opened_key(operation_id))
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    return OrderEvent(id=row.id, order_code=row.order_code, type=row.type, actor=row.actor, at=row.at, data=row.data)
