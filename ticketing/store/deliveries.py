"""The delivery log: what email was queued, sent or failed, keyed by Message-ID.

A retried activity asks the log first and does not send what it says was sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.store.tables import deliveries


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


async def claim_delivery(
    conn: AsyncConnection,
    *,
    message_id: str,
    order_code: str | None,
    workflow_id: str,
    kind: str,
    provider: str,
) -> DeliveryStatus | None:
    """Record the intent to send; return the prior status if the message is known already."""
    row = (
        await conn.execute(sa.select(deliveries.c.status).where(deliveries.c.message_id == message_id))
    ).first()
    now = datetime.now(UTC)
    if row is not None:
        await conn.execute(
            deliveries.update()
            .where(deliveries.c.message_id == message_id)
            .values(attempts=deliveries.c.attempts + 1, updated_at=now)
        )
        return DeliveryStatus(row.status)
    await conn.execute(
        deliveries.insert().values(
            message_id=message_id,
            order_code=order_code,
            workflow_id=workflow_id,
            kind=kind,
            provider=provider,
            status=DeliveryStatus.QUEUED.value,
            attempts=1,
            created_at=now,
            updated_at=now,
        )
    )
    return None


async def mark_delivery(
    conn: AsyncConnection, message_id: str, status: DeliveryStatus, reason: str | None = None
) -> None:
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.message_id == message_id)
        .values(status=status.value, reason=reason, updated_at=datetime.now(UTC))
    )


async def deliveries_for(conn: AsyncConnection, workflow_id: str) -> list[sa.Row[tuple[object, ...]]]:
    stmt = sa.select(deliveries).where(deliveries.c.workflow_id == workflow_id)
    return list((await conn.execute(stmt.order_by(deliveries.c.created_at))).all())
