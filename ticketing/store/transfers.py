"""The ticket transfers table: the recipient's name and email live here, never in a workflow payload."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.errors import NotFound
from ticketing.models import Contact
from ticketing.states import TransferStatus
from ticketing.store.tables import bulk_items, ticket_transfers
from ticketing.transfers import TicketTransfer


def _from_row(row: Any) -> TicketTransfer:
    return TicketTransfer(
        id=row.id,
        order_code=row.order_code,
        ticket_id=row.ticket_id,
        recipient=Contact(name=row.recipient_name, email=row.recipient_email),
        status=TransferStatus(row.status),
        expires_at=row.expires_at,
        new_order_code=row.new_order_code,
        new_ticket_id=row.new_ticket_id,
        created_by=row.created_by,
        created_at=row.created_at,
    )


async def insert_transfer(conn: AsyncConnection, transfer: TicketTransfer) -> None:
    """Record a requested transfer once: a repeated request with the same id finds the first."""
    if await find_transfer(conn, transfer.id) is not None:
        return
    await conn.execute(
        ticket_transfers.insert().values(
            id=transfer.id,
            order_code=transfer.order_code,
            ticket_id=transfer.ticket_id,
            recipient_name=transfer.recipient.name,
            recipient_email=(transfer.recipient.email or "").lower(),
            status=transfer.status.value,
            expires_at=transfer.expires_at,
            created_by=transfer.created_by,
            created_at=transfer.created_at,
            updated_at=transfer.created_at,
        )
    )


async def find_transfer(conn: AsyncConnection, transfer_id: str) -> TicketTransfer | None:
    row = (await conn.execute(sa.select(ticket_transfers).where(ticket_transfers.c.id == transfer_id))).first()
    return _from_row(row) if row else None


async def load_transfer(conn: AsyncConnection, transfer_id: str) -> TicketTransfer:
    found = await find_transfer(conn, transfer_id)
    if found is None:
        raise NotFound(f"transfer {transfer_id} does not exist", type="transfer-not-found")
    return found


async def open_transfer_of(conn: AsyncConnection, order_code: str, ticket_id: str) -> TicketTransfer | None:
    """The ticket's transfer that is not settled yet (requested or offered), if any."""
    row = (
        await conn.execute(
            sa.select(ticket_transfers)
            .where(
                ticket_transfers.c.order_code == order_code,
                ticket_transfers.c.ticket_id == ticket_id,
                ticket_transfers.c.status.in_([TransferStatus.REQUESTED.value, TransferStatus.OFFERED.value]),
            )
            .order_by(ticket_transfers.c.created_at.desc())
        )
    ).first()
    return _from_row(row) if row else None


async def open_transfers_of_bulk(
    conn: AsyncConnection, bulk_id: str, *, after: str | None, limit: int
) -> list[TicketTransfer]:
    """The open (requested or offered) transfers of a bulk operation's orders, by id after `after`."""
    stmt = (
        sa.select(ticket_transfers)
        .join(bulk_items, sa.and_(bulk_items.c.bulk_id == bulk_id, bulk_items.c.key == ticket_transfers.c.order_code))
        .where(ticket_transfers.c.status.in_([TransferStatus.REQUESTED.value, TransferStatus.OFFERED.value]))
        .order_by(ticket_transfers.c.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(ticket_transfers.c.id > after)
    return [_from_row(row) for row in (await conn.execute(stmt)).all()]


async def save_transfer(conn: AsyncConnection, transfer: TicketTransfer) -> None:
    await conn.execute(
        ticket_transfers.update()
        .where(ticket_transfers.c.id == transfer.id)
        .values(
            status=transfer.status.value,
            expires_at=transfer.expires_at,
            new_order_code=transfer.new_order_code,
            new_ticket_id=transfer.new_ticket_id,
            updated_at=datetime.now(UTC),
        )
    )
