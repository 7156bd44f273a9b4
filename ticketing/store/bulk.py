"""Bulk operations in the store: the item set is materialised once, then worked through by id.

Recipients are grouped in SQL (one row per email address), so a buyer with
several orders is one item and one email, and no recipient list ever travels
through a workflow payload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.bulk import RETRYABLE, Audience, BulkStatus, ItemStatus, Selection
from ticketing.errors import NotFound
from ticketing.store.tables import bulk_items, bulk_operations, events, orders, tickets, time_slots


def _now() -> datetime:
    return datetime.now(UTC)


async def create_bulk(
    conn: AsyncConnection,
    *,
    bulk_id: str,
    kind: str,
    event_id: str,
    workflow_id: str,
    params: dict[str, Any],
    created_by: str,
    retry_of: str | None = None,
    status: BulkStatus = BulkStatus.RUNNING,
) -> bool:
    """Insert the operation unless it exists; True when it was created now."""
    exists = (await conn.execute(sa.select(bulk_operations.c.id).where(bulk_operations.c.id == bulk_id))).first()
    if exists:
        return False
    now = _now()
    await conn.execute(
        bulk_operations.insert().values(
            id=bulk_id,
            kind=kind,
            event_id=event_id,
            workflow_id=workflow_id,
            status=status.value,
            params=params,
            counts={},
            retry_of=retry_of,
            created_by=created_by,
            created_at=now,
            updated_at=now,
        )
    )
    return True


async def mark_event_cancelled(conn: AsyncConnection, event_id: str) -> None:
    """No more sales or scans for an event that is called off."""
    await conn.execute(events.update().where(events.c.id == event_id).values(cancelled=True))


async def mark_time_slot_cancelled(conn: AsyncConnection, event_id: str, time_slot_id: str) -> None:
    """One slot called off. The event's row is taken first: a transfer being opened or accepted holds it
    for share (PostgreSQL; SQLite writers are serial anyway), so it commits before this, or sees the mark."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(events.c.id).where(events.c.id == event_id).with_for_update())
    await conn.execute(
        time_slots.update()
        .where(time_slots.c.id == time_slot_id, time_slots.c.event_id == event_id)
        .values(cancelled=True)
    )


async def load_bulk(conn: AsyncConnection, bulk_id: str) -> sa.Row[Any]:
    row = (await conn.execute(sa.select(bulk_operations).where(bulk_operations.c.id == bulk_id))).first()
    if row is None:
        raise NotFound(f"bulk operation {bulk_id} does not exist", type="bulk-not-found")
    return row


async def set_bulk(conn: AsyncConnection, bulk_id: str, **values: Any) -> None:
    await conn.execute(
        bulk_operations.update().where(bulk_operations.c.id == bulk_id).values(**values, updated_at=_now())
    )


def _ticket_filter(selection: Selection) -> sa.ColumnElement[bool]:
    conditions = [tickets.c.order_code == orders.c.code, tickets.c.state == "valid"]
    if selection.time_slot_id:
        conditions.append(tickets.c.time_slot_id == selection.time_slot_id)
    if selection.unscanned_only:
        conditions.append(tickets.c.scan_state == "unscanned")
    return sa.and_(*conditions)


def _order_filter(selection: Selection) -> sa.ColumnElement[bool]:
    return sa.and_(
        orders.c.event_id == selection.event_id,
        orders.c.status.in_([s.value for s in selection.statuses]),
    )


def recipient_key(selection: Selection) -> sa.ColumnElement[Any]:
    if selection.audience is Audience.ATTENDEES:
        return sa.func.coalesce(sa.func.lower(tickets.c.holder_email), orders.c.contact_email)
    return orders.c.contact_email


async def select_recipients(conn: AsyncConnection, bulk_id: str, selection: Selection) -> None:
    """One pending item per recipient address; orders without an address are skipped items."""
    now = _now()
    key = recipient_key(selection)
    grouped = (
        sa.select(sa.literal(bulk_id), key, sa.literal(ItemStatus.PENDING.value), sa.literal(now))
        .select_from(orders.join(tickets, _ticket_filter(selection)))
        .where(_order_filter(selection), key.is_not(None))
        .group_by(key)
    )
    await conn.execute(bulk_items.insert().from_select(["bulk_id", "key", "status", "updated_at"], grouped))
    no_address = (
        sa.select(
            sa.literal(bulk_id),
            sa.literal("order:") + orders.c.code,
            sa.literal(ItemStatus.SKIPPED.value),
            sa.literal("no-contact-email"),
            sa.literal(now),
        )
        .where(_order_filter(selection), orders.c.contact_email.is_(None))
        .where(sa.exists(sa.select(tickets.c.id).where(_ticket_filter(selection))))
    )
    await conn.execute(
        bulk_items.insert().from_select(["bulk_id", "key", "status", "reason", "updated_at"], no_address)
    )


async def select_orders(conn: AsyncConnection, bulk_id: str, selection: Selection) -> None:
    """One pending item per order of the event (or of one time slot)."""
    stmt = sa.select(
        sa.literal(bulk_id), orders.c.code, sa.literal(ItemStatus.PENDING.value), sa.literal(_now())
    ).where(_order_filter(selection))
    if selection.time_slot_id:
        stmt = stmt.where(
            sa.exists(
                sa.select(tickets.c.id).where(
                    tickets.c.order_code == orders.c.code, tickets.c.time_slot_id == selection.time_slot_id
                )
            )
        )
    await conn.execute(bulk_items.insert().from_select(["bulk_id", "key", "status", "updated_at"], stmt))


async def copy_retryable(conn: AsyncConnection, bulk_id: str, previous: str) -> None:
    """A "retry failed" run: only the items that failed last time, pending again."""
    stmt = sa.select(
        sa.literal(bulk_id), bulk_items.c.key, sa.literal(ItemStatus.PENDING.value), sa.literal(_now())
    ).where(bulk_items.c.bulk_id == previous, bulk_items.c.status.in_([s.value for s in RETRYABLE]))
    await conn.execute(bulk_items.insert().from_select(["bulk_id", "key", "status", "updated_at"], stmt))


async def item_range(conn: AsyncConnection, bulk_id: str) -> tuple[int, int, int]:
    """(first id, last id, count) of the operation's items."""
    row = (
        await conn.execute(
            sa.select(sa.func.min(bulk_items.c.id), sa.func.max(bulk_items.c.id), sa.func.count()).where(
                bulk_items.c.bulk_id == bulk_id
            )
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def in_range(bulk_id: str, first: int, last: int, statuses: set[ItemStatus]) -> sa.ColumnElement[bool]:
    """The operation's items with ids first..last in one of these states: a batch's share."""
    return sa.and_(
        bulk_items.c.bulk_id == bulk_id,
        bulk_items.c.id >= first,
        bulk_items.c.id <= last,
        bulk_items.c.status.in_([s.value for s in statuses]),
    )


async def items_in_range(
    conn: AsyncConnection, bulk_id: str, first: int, last: int, statuses: set[ItemStatus]
) -> list[sa.Row[Any]]:
    stmt = sa.select(bulk_items).where(in_range(bulk_id, first, last, statuses)).order_by(bulk_items.c.id)
    return list((await conn.execute(stmt)).all())


async def mark_item(
    conn: AsyncConnection,
    item_id: int,
    status: ItemStatus,
    *,
    reason: str | None = None,
    message_id: str | None = None,
    refund_id: str | None = None,
) -> None:
    values: dict[str, Any] = {"status": status.value, "reason": reason, "updated_at": _now()}
    if message_id:
        values["message_id"] = message_id
    if refund_id:
        values["refund_id"] = refund_id
    await conn.execute(bulk_items.update().where(bulk_items.c.id == item_id).values(**values))


async def mark_pending_as(conn: AsyncConnection, bulk_id: str, status: ItemStatus, reason: str) -> int:
    result = await conn.execute(
        bulk_items.update()
        .where(bulk_items.c.bulk_id == bulk_id, bulk_items.c.status.in_(["pending", "notified"]))
        .values(status=status.value, reason=reason, updated_at=_now())
    )
    return int(result.rowcount)


async def fail_deferred(conn: AsyncConnection, bulk_id: str) -> int:
    """Recipients still refused for now after every retry pass fail, with the server's last words."""
    result = await conn.execute(
        bulk_items.update()
        .where(bulk_items.c.bulk_id == bulk_id, bulk_items.c.status == ItemStatus.DEFERRED.value)
        .values(
            status=ItemStatus.FAILED.value,
            reason=sa.func.substr(sa.literal("still deferred after every retry: ") + bulk_items.c.reason, 1, 500),
            updated_at=_now(),
        )
    )
    return int(result.rowcount)


async def status_counts(conn: AsyncConnection, bulk_id: str) -> dict[str, int]:
    rows = await conn.execute(
        sa.select(bulk_items.c.status, sa.func.count())
        .where(bulk_items.c.bulk_id == bulk_id)
        .group_by(bulk_items.c.status)
    )
    return {r[0]: int(r[1]) for r in rows}


async def iter_items(conn: AsyncConnection, bulk_id: str, chunk: int = 1000) -> AsyncIterator[sa.Row[Any]]:
    """Every item in id order, a chunk at a time, for reports of any size."""
    after = 0
    while True:
        rows = (
            await conn.execute(
                sa.select(bulk_items)
                .where(bulk_items.c.bulk_id == bulk_id, bulk_items.c.id > after)
                .order_by(bulk_items.c.id)
                .limit(chunk)
            )
        ).all()
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].id


async def recipient_orders(conn: AsyncConnection, selection: Selection, key: str) -> dict[str, list[str]]:
    """For one recipient: order code -> the ticket ids (valid, matching the selection) they receive."""
    rows = await conn.execute(
        sa.select(orders.c.code, tickets.c.id)
        .select_from(orders.join(tickets, _ticket_filter(selection)))
        .where(_order_filter(selection), recipient_key(selection) == key)
        .order_by(orders.c.created_at, tickets.c.position)
    )
    found: dict[str, list[str]] = {}
    for code, ticket_id in rows:
        found.setdefault(code, []).append(ticket_id)
    return found


async def recipients_orders(
    conn: AsyncConnection, selection: Selection, keys: list[str]
) -> dict[str, dict[str, list[str]]]:
    """`recipient_orders` for many recipients in one query: key -> order code -> ticket ids."""
    if not keys:
        return {}
    key = recipient_key(selection)
    rows = await conn.execute(
        sa.select(key.label("recipient"), orders.c.code, tickets.c.id)
        .select_from(orders.join(tickets, _ticket_filter(selection)))
        .where(_order_filter(selection), key.in_(keys))
        .order_by(orders.c.created_at, tickets.c.position)
    )
    found: dict[str, dict[str, list[str]]] = {}
    for recipient, code, ticket_id in rows:
        found.setdefault(recipient, {}).setdefault(code, []).append(ticket_id)
    return found


@dataclass(frozen=True)
class ItemMark:
    item_id: int
    status: ItemStatus
    reason: str | None = None
    message_id: str | None = None


async def mark_items(conn: AsyncConnection, marks: Sequence[ItemMark]) -> None:
    """`mark_item` for many items in one statement; a mark without a message id keeps the item's."""
    if not marks:
        return
    await conn.execute(
        bulk_items.update()
        .where(bulk_items.c.id == sa.bindparam("b_id"))
        .values(
            status=sa.bindparam("b_status"),
            reason=sa.bindparam("b_reason"),
            message_id=sa.func.coalesce(sa.bindparam("b_message_id"), bulk_items.c.message_id),
            updated_at=_now(),
        ),
        [
            {"b_id": m.item_id, "b_status": m.status.value, "b_reason": m.reason, "b_message_id": m.message_id}
            for m in marks
        ],
    )
