"""Events as a list, with how many orders each has in each status (one grouped query)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.models import Event, EventPolicy
from ticketing.store.tables import events, orders


async def list_events(
    conn: AsyncConnection, *, include_cancelled: bool = True, limit: int = 100, offset: int = 0
) -> list[tuple[Event, dict[str, int]]]:
    """Events by start time (soonest first), each with its order counts by status."""
    stmt = sa.select(events).order_by(events.c.starts_at, events.c.id)
    if not include_cancelled:
        stmt = stmt.where(events.c.cancelled.is_(False))
    rows = (await conn.execute(stmt.limit(limit).offset(offset))).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    counts: dict[str, dict[str, int]] = {i: {} for i in ids}
    grouped = sa.select(orders.c.event_id, orders.c.status, sa.func.count()).where(orders.c.event_id.in_(ids))
    for event_id, status, count in (await conn.execute(grouped.group_by(orders.c.event_id, orders.c.status))).all():
        counts[event_id][status] = count
    return [
        (
            Event(
                id=r.id,
                name=r.name,
                venue=r.venue,
                starts_at=r.starts_at,
                currency=r.currency,
                policy=EventPolicy.model_validate(r.policy),
                cancelled=r.cancelled,
            ),
            counts[r.id],
        )
        for r in rows
    ]
