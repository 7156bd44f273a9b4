"""What the auditor reads: orders with their refunds page by page, and the few aggregates it checks.

Reads only, each in the caller's read transaction; the checks are `ticketing.audit`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.audit import OpenDelivery
from ticketing.models import Order, Processor, Refund
from ticketing.reconciliation_records import ReconWindow
from ticketing.states import RefundStatus
from ticketing.store import reconciliation as recon
from ticketing.store.deliveries import OPEN, DeliveryStatus
from ticketing.store.orders import load_orders
from ticketing.store.refunds import refund_from_row, refunds_by_ids
from ticketing.store.tables import deliveries, order_events, orders, refunds, tickets

# History events written when a message was sent, each naming its Message-ID.
SENT_EVENTS = [
    "tickets-resent",
    "tickets-reissued-sent",
    "tickets-rescheduled-sent",
    "refund-receipt-sent",
    "refund-failure-sent",
    "bulk-delivery-sent",
]


async def refunds_of_orders(conn: AsyncConnection, order_codes: list[str]) -> list[Refund]:
    """Every ledger row of these orders."""
    if not order_codes:
        return []
    rows = await conn.execute(sa.select(refunds).where(refunds.c.order_code.in_(order_codes)))
    return [refund_from_row(r) for r in rows]


async def orders_with_refunds(
    conn: AsyncConnection, *, page: int = 500
) -> AsyncIterator[tuple[Order, list[Refund]]]:
    """Every order, in code order, with its ledger rows."""
    after = ""
    while True:
        codes = list(
            (
                await conn.execute(
                    sa.select(orders.c.code).where(orders.c.code > after).order_by(orders.c.code).limit(page)
                )
            ).scalars()
        )
        if not codes:
            return
        by_order: dict[str, list[Refund]] = {}
        for refund in await refunds_of_orders(conn, codes):
            by_order.setdefault(refund.order_code, []).append(refund)
        for order in await load_orders(conn, codes):
            yield order, by_order.get(order.code, [])
        after = codes[-1]


async def duplicate_valid_barcodes(conn: AsyncConnection) -> list[tuple[str, str]]:
    """(barcode, ticket id) of valid tickets whose barcode another valid ticket has too."""
    shared = (
        sa.select(tickets.c.barcode)
        .where(tickets.c.state == "valid")
        .group_by(tickets.c.barcode)
        .having(sa.func.count() > 1)
    )
    rows = await conn.execute(
        sa.select(tickets.c.barcode, tickets.c.id).where(tickets.c.state == "valid", tickets.c.barcode.in_(shared))
    )
    return [(r.barcode, r.id) for r in rows]


async def open_deliveries(conn: AsyncConnection, claimed_before: datetime) -> list[OpenDelivery]:
    """Delivery rows still queued or deferred, claimed before the given time."""
    rows = await conn.execute(
        sa.select(deliveries).where(deliveries.c.status.in_(list(OPEN)), deliveries.c.created_at < claimed_before)
    )
    return [
        OpenDelivery(
            message_id=r.message_id, workflow_id=r.workflow_id, kind=r.kind, status=r.status,
            reason=r.reason, claimed_at=r.created_at,
        )
        for r in rows
    ]


async def sent_message_ids(conn: AsyncConnection) -> list[tuple[str, str]]:
    """(Message-ID, where) for each sending the store recorded: the log's sent rows, and each
    order's history events that name a Message-ID (one per order per sending)."""
    found = [
        (r.message_id, "log")
        for r in await conn.execute(
            sa.select(deliveries.c.message_id).where(deliveries.c.status == DeliveryStatus.SENT.value)
        )
    ]
    history = await conn.execute(
        sa.select(order_events.c.order_code, order_events.c.type, order_events.c.data).where(
            order_events.c.type.in_(SENT_EVENTS)
        )
    )
    found += [
        (str(r.data["message_id"]), f"history:{r.order_code}")
        for r in history
        if isinstance(r.data, dict) and r.data.get("message_id")
    ]
    return found


async def waiting_refunds(conn: AsyncConnection) -> list[Refund]:
    """Refunds that wait on the processor or on finance: the ones with a deadline."""
    ids = (
        await conn.execute(
            sa.select(refunds.c.id).where(
                refunds.c.status.in_([RefundStatus.CONFIRMING.value, RefundStatus.AWAITING_MANUAL.value])
            )
        )
    ).scalars()
    return list((await refunds_by_ids(conn, list(ids))).values())


async def finance_told(conn: AsyncConnection, workflow_ids: list[str]) -> set[str]:
    """The refund workflows that have sent finance a notice (an error or a reminder)."""
    if not workflow_ids:
        return set()
    rows = await conn.execute(
        sa.select(deliveries.c.workflow_id).where(
            deliveries.c.workflow_id.in_(workflow_ids),
            deliveries.c.kind.in_(["refund-refund-error", "refund-manual-reminder"]),
            deliveries.c.status == DeliveryStatus.SENT.value,
        )
    )
    return {r.workflow_id for r in rows}


async def ledger_window_totals(
    conn: AsyncConnection,
    processor: Processor,
    window: ReconWindow,
    *,
    listed: Sequence[str],
    naming: Sequence[str],
    elsewhere: Sequence[str],
) -> dict[str, int]:
    """{currency: minor units} the ledger refunded in the window by reconciliation's rule
    (`refunded_in_window`), with the processor's side read by the auditor instead of staged."""
    counted = recon.refunded_in_window(
        processor,
        window,
        listed=recon.ids_of(conn, listed),
        naming=recon.ids_of(conn, naming),
        elsewhere=recon.ids_of(conn, elsewhere),
    )
    return await recon.refunded_totals(conn, counted)


async def unclaimed_in_window(
    conn: AsyncConnection, processor: Processor, window: ReconWindow, *, listed: Sequence[str], naming: Sequence[str]
) -> list[Refund]:
    """Processor-refunded ledger refunds made in the window on the ledger's clock that no processor
    refund of the window claims (by its id, or naming the refund): the ones whose processor refund
    may have been made in another window (`counted_elsewhere`)."""
    stmt = sa.select(refunds).where(
        refunds.c.processor == processor.value,
        refunds.c.created_at >= window.start,
        refunds.c.created_at < window.end,
        refunds.c.status == RefundStatus.SUCCEEDED.value,
        refunds.c.manual_reference.is_(None),
        refunds.c.id.not_in(recon.ids_of(conn, naming)),
        sa.or_(
            refunds.c.processor_refund_id.is_(None),
            refunds.c.processor_refund_id.not_in(recon.ids_of(conn, listed)),
        ),
    )
    return [refund_from_row(r) for r in await conn.execute(stmt)]
