"""The delivery log: what email was queued, sent or failed, keyed by Message-ID.

A retried activity asks the log first and does not send what it says was sent.
Every claimed row ends `sent`, `failed`, `deferred` (the server said later, a retry
will come) or `skipped` with a reason (nothing left to send when the retry came):
`queued` is only the moment between the claim and the send's answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.store.tables import deliveries


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"
    DEFERRED = "deferred"
    SKIPPED = "skipped"


OPEN = (DeliveryStatus.QUEUED.value, DeliveryStatus.DEFERRED.value)


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


@dataclass(frozen=True)
class DeliveryClaim:
    message_id: str
    order_code: str | None
    workflow_id: str
    kind: str
    provider: str


async def claim_deliveries(conn: AsyncConnection, claims: Sequence[DeliveryClaim]) -> dict[str, DeliveryStatus]:
    """`claim_delivery` for many messages in three statements: the prior status of each one known already."""
    if not claims:
        return {}
    ids = [c.message_id for c in claims]
    rows = await conn.execute(
        sa.select(deliveries.c.message_id, deliveries.c.status).where(deliveries.c.message_id.in_(ids))
    )
    prior = {r.message_id: DeliveryStatus(r.status) for r in rows}
    now = datetime.now(UTC)
    if prior:
        await conn.execute(
            deliveries.update()
            .where(deliveries.c.message_id.in_(list(prior)))
            .values(attempts=deliveries.c.attempts + 1, updated_at=now)
        )
    fresh = {c.message_id: c for c in claims if c.message_id not in prior}
    if fresh:
        await conn.execute(
            deliveries.insert(),
            [
                {
                    "message_id": c.message_id,
                    "order_code": c.order_code,
                    "workflow_id": c.workflow_id,
                    "kind": c.kind,
                    "provider": c.provider,
                    "status": DeliveryStatus.QUEUED.value,
                    "attempts": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for c in fresh.values()
            ],
        )
    return prior


async def mark_deliveries(
    conn: AsyncConnection, marks: Sequence[tuple[str, DeliveryStatus, str | None]]
) -> None:
    """`mark_delivery` for many messages in one statement: (message id, status, reason)."""
    if not marks:
        return
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.message_id == sa.bindparam("b_id"))
        .values(status=sa.bindparam("b_status"), reason=sa.bindparam("b_reason"), updated_at=datetime.now(UTC)),
        [{"b_id": mid, "b_status": status.value, "b_reason": reason} for mid, status, reason in marks],
    )


async def close_open_deliveries(
    conn: AsyncConnection,
    status: DeliveryStatus,
    reason: str,
    *,
    message_ids: Sequence[str] | None = None,
    workflow_id: str | None = None,
    kind: str | None = None,
    keep: str | None = None,
    only: DeliveryStatus | None = None,
) -> int:
    """Close the rows still open (queued or deferred) among those named: by Message-ID, or by
    operation (and kind), but for `keep`. Rows already sent, failed or skipped stay as they are."""
    stmt = deliveries.update().where(deliveries.c.status.in_([only.value] if only else list(OPEN)))
    if message_ids is not None:
        if not message_ids:
            return 0
        stmt = stmt.where(deliveries.c.message_id.in_(list(message_ids)))
    if workflow_id is not None:
        stmt = stmt.where(deliveries.c.workflow_id == workflow_id)
    if kind is not None:
        stmt = stmt.where(deliveries.c.kind == kind)
    if keep is not None:
        stmt = stmt.where(deliveries.c.message_id != keep)
    result = await conn.execute(stmt.values(status=status.value, reason=reason[:500], updated_at=datetime.now(UTC)))
    return int(result.rowcount or 0)
