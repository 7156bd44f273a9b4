"""Loading and saving the order aggregate: order row, tickets, scans and history.

`save_order` is the one audit call: it writes the new state and the history
events in the caller's transaction, and refuses if the order moved under us.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.errors import ConcurrentModification, NotFound
from ticketing.models import (
    Contact,
    Event,
    EventPolicy,
    Fee,
    Order,
    OrderEvent,
    Payment,
    PaymentMethod,
    Personalisation,
    Processor,
    Scan,
    Ticket,
    TicketType,
    TimeSlot,
)
from ticketing.money import Money
from ticketing.states import OrderStatus, PaymentStatus, ScanState, TicketState
from ticketing.store.tables import (
    events,
    order_events,
    orders,
    scans,
    ticket_types,
    tickets,
    time_slots,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _order_row(order: Order) -> dict[str, Any]:
    c = order.contact
    return {
        "code": order.code,
        "event_id": order.event_id,
        "status": order.status.value,
        "contact_name": c.name,
        "contact_name_search": c.name.lower() if c.name else None,
        "contact_email": c.email.lower() if c.email else None,
        "contact_mobile": c.mobile,
        "contact_verified": c.verified,
        "payment_method": order.payment.method.value,
        "processor": order.payment.processor.value,
        "payment_reference": order.payment.reference,
        "card_last4": order.payment.card_last4,
        "payment_status": order.payment.status.value,
        "payment_amount": order.payment.amount.amount,
        "currency": order.currency,
        "dispute_open": order.payment.dispute_open,
        "fees": [f.model_dump(mode="json") for f in order.fees],
        "refunded_total": order.refunded_total.amount,
        "pending_refund_total": order.pending_refund_total.amount,
        "created_at": order.created_at,
    }


def _ticket_row(ticket: Ticket, position: int) -> dict[str, Any]:
    p = ticket.personalisation
    return {
        "id": ticket.id,
        "order_code": ticket.order_code,
        "position": position,
        "barcode": ticket.barcode,
        "ticket_type_id": ticket.ticket_type_id,
        "time_slot_id": ticket.time_slot_id,
        "price": ticket.price.amount,
        "state": ticket.state.value,
        "scan_state": ticket.scan_state.value,
        "requires_personalisation": ticket.requires_personalisation,
        "holder_name": p.name if p else None,
        "holder_email": p.email if p else None,
        "holder_phone": p.phone if p else None,
        "replaced_by": ticket.replaced_by,
        "in_transfer": ticket.in_transfer,
    }


def _ticket_from_row(row: Any, currency: str, ticket_scans: list[Scan]) -> Ticket:
    holder = None
    if row.holder_name or row.holder_email or row.holder_phone:
        holder = Personalisation(name=row.holder_name, email=row.holder_email, phone=row.holder_phone)
    return Ticket(
        id=row.id,
        order_code=row.order_code,
        barcode=row.barcode,
        ticket_type_id=row.ticket_type_id,
        time_slot_id=row.time_slot_id,
        price=Money(amount=row.price, currency=currency),
        state=TicketState(row.state),
        scan_state=ScanState(row.scan_state),
        personalisation=holder,
        requires_personalisation=row.requires_personalisation,
        replaced_by=row.replaced_by,
        in_transfer=row.in_transfer,
        scans=ticket_scans,
    )


def _order_from_row(row: Any, order_tickets: list[Ticket]) -> Order:
    cur = row.currency
    return Order(
        code=row.code,
        event_id=row.event_id,
        status=OrderStatus(row.status),
        contact=Contact(
            name=row.contact_name,
            email=row.contact_email,
            mobile=row.contact_mobile,
            verified=row.contact_verified,
        ),
        payment=Payment(
            method=PaymentMethod(row.payment_method),
            processor=Processor(row.processor),
            reference=row.payment_reference,
            card_last4=row.card_last4,
            status=PaymentStatus(row.payment_status),
            amount=Money(amount=row.payment_amount, currency=cur),
            dispute_open=row.dispute_open,
        ),
        fees=[Fee.model_validate(f) for f in row.fees],
        tickets=order_tickets,
        refunded_total=Money(amount=row.refunded_total, currency=cur),
        pending_refund_total=Money(amount=row.pending_refund_total, currency=cur),
        created_at=row.created_at,
        version=row.version,
    )


async def load_orders(conn: AsyncConnection, codes: Sequence[str]) -> list[Order]:
    """Load several orders with their tickets and scans in three queries."""
    if not codes:
        return []
    order_rows = (await conn.execute(sa.select(orders).where(orders.c.code.in_(codes)))).all()
    ticket_rows = (
        await conn.execute(
            sa.select(tickets).where(tickets.c.order_code.in_(codes)).order_by(tickets.c.position)
        )
    ).all()
    scan_rows = (
        await conn.execute(
            sa.select(scans)
            .join(tickets, tickets.c.id == scans.c.ticket_id)
            .where(tickets.c.order_code.in_(codes))
            .order_by(scans.c.id)
        )
    ).all()
    by_ticket: dict[str, list[Scan]] = {}
    for s in scan_rows:
        by_ticket.setdefault(s.ticket_id, []).append(
            Scan(
                at=s.at,
                result=s.result,
                reason=s.reason,
                access_point=s.access_point,
                scan_state=ScanState(s.scan_state) if s.scan_state else None,
            )
        )
    currencies = {r.code: r.currency for r in order_rows}
    by_order: dict[str, list[Ticket]] = {}
    for t in ticket_rows:
        by_order.setdefault(t.order_code, []).append(
            _ticket_from_row(t, currencies[t.order_code], by_ticket.get(t.id, []))
        )
    loaded = {r.code: _order_from_row(r, by_order.get(r.code, [])) for r in order_rows}
    return [loaded[c] for c in codes if c in loaded]


async def load_order(conn: AsyncConnection, code: str, *, for_update: bool = False) -> Order:
    if for_update and conn.dialect.name == "postgresql":
        await conn.execute(sa.select(orders.c.code).where(orders.c.code == code).with_for_update())
    found = await load_orders(conn, [code])
    if not found:
        raise NotFound(f"order {code} does not exist", type="order-not-found")
    return found[0]


async def insert_order(conn: AsyncConnection, order: Order, history: Sequence[OrderEvent]) -> None:
    now = _now()
    await conn.execute(
        orders.insert().values(**_order_row(order), updated_at=now, version=order.version)
    )
    if order.tickets:
        await conn.execute(
            tickets.insert(), [_ticket_row(t, i) for i, t in enumerate(order.tickets)]
        )
    await append_history(conn, order.code, history)


async def append_history(conn: AsyncConnection, code: str, history: Sequence[OrderEvent]) -> None:
    """Append events; one whose dedupe key is recorded already is skipped, not doubled."""
    await append_histories(conn, [(code, e) for e in history])


async def append_histories(conn: AsyncConnection, entries: Sequence[tuple[str, OrderEvent]]) -> None:
    """Append (order code, event) pairs of any orders in two statements, deduplicated as `append_history`."""
    keys = [e.dedupe_key for _, e in entries if e.dedupe_key]
    seen: set[str] = set()
    if keys:
        rows = await conn.execute(
            sa.select(order_events.c.dedupe_key).where(order_events.c.dedupe_key.in_(keys))
        )
        seen = {r.dedupe_key for r in rows}
    fresh = []
    for code, e in entries:
        if e.dedupe_key and e.dedupe_key in seen:
            continue
        if e.dedupe_key:
            seen.add(e.dedupe_key)
        fresh.append(
            {
                "order_code": code,
                "type": e.type,
                "actor": e.actor,
                "at": e.at,
                "data": e.data,
                "dedupe_key": e.dedupe_key,
            }
        )
    if fresh:
        await conn.execute(order_events.insert(), fresh)


async def save_order(
    conn: AsyncConnection, before: Order, after: Order, history: Sequence[OrderEvent]
) -> Order:
    """Write `after` over `before` with its history; refuse if someone else wrote first."""
    if before.code != after.code:
        raise ValueError("save_order compares two versions of one order")
    row = _order_row(after)
    result = await conn.execute(
        orders.update()
        .where(orders.c.code == before.code, orders.c.version == before.version)
        .values(**row, updated_at=_now(), version=before.version + 1)
    )
    if result.rowcount != 1:
        raise ConcurrentModification(
            f"order {before.code} was changed by someone else; reload and try again"
        )
    old = {t.id: t for t in before.tickets}
    for position, ticket in enumerate(after.tickets):
        previous = old.get(ticket.id)
        if previous is None:
            await conn.execute(tickets.insert().values(**_ticket_row(ticket, position)))
        elif previous != ticket:
            await conn.execute(
                tickets.update()
                .where(tickets.c.id == ticket.id)
                .values(**_ticket_row(ticket, position))
            )
        new_scans = ticket.scans[len(previous.scans) if previous else 0 :]
        if new_scans:
            await conn.execute(
                scans.insert(),
                [
                    {
                        "ticket_id": ticket.id,
                        "at": s.at,
                        "result": s.result,
                        "reason": s.reason,
                        "access_point": s.access_point,
                        "scan_state": s.scan_state.value if s.scan_state else None,
                    }
                    for s in new_scans
                ],
            )
    await append_history(conn, after.code, history)
    return after.model_copy(update={"version": before.version + 1})


async def load_history(conn: AsyncConnection, code: str) -> list[OrderEvent]:
    rows = (
        await conn.execute(
            sa.select(order_events).where(order_events.c.order_code == code).order_by(order_events.c.id)
        )
    ).all()
    return [
        OrderEvent(id=r.id, order_code=r.order_code, type=r.type, actor=r.actor, at=r.at, data=r.data)
        for r in rows
    ]


async def load_event(conn: AsyncConnection, event_id: str, *, for_share: bool = False) -> Event:
    """`for_share`: hold the event row (PostgreSQL) until commit, so an event or time-slot cancellation
    waits, or is seen (both take the event row before they mark anything)."""
    stmt = sa.select(events).where(events.c.id == event_id)
    if for_share and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=True)
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"event {event_id} does not exist", type="event-not-found")
    slots = await conn.execute(
        sa.select(time_slots.c.id).where(time_slots.c.event_id == event_id, time_slots.c.cancelled.is_(True))
    )
    return Event(
        id=row.id,
        name=row.name,
        venue=row.venue,
        starts_at=row.starts_at,
        currency=row.currency,
        policy=EventPolicy.model_validate(row.policy),
        cancelled=row.cancelled,
        cancelled_time_slots=sorted(slots.scalars()),
    )


async def insert_event(
    conn: AsyncConnection, event: Event, types: Sequence[TicketType], slots: Sequence[TimeSlot]
) -> None:
    await conn.execute(
        events.insert().values(
            id=event.id,
            name=event.name,
            venue=event.venue,
            starts_at=event.starts_at,
            currency=event.currency,
            policy=event.policy.model_dump(mode="json"),
            cancelled=event.cancelled,
        )
    )
    if types:
        await conn.execute(
            ticket_types.insert(),
            [
                {
                    "id": t.id,
                    "event_id": t.event_id,
                    "name": t.name,
                    "price": t.price.amount,
                    "currency": t.price.currency,
                    "quota": t.quota,
                    "sold": t.sold,
                    "requires_personalisation": t.requires_personalisation,
                }
                for t in types
            ],
        )
    if slots:
        await conn.execute(
            time_slots.insert(),
            [
                {
                    "id": s.id,
                    "event_id": s.event_id,
                    "label": s.label,
                    "starts_at": s.starts_at,
                    "capacity": s.capacity,
                    "sold": s.sold,
                    "cancelled": s.cancelled,
                }
                for s in slots
            ],
        )


async def load_ticket_types(conn: AsyncConnection, event_id: str) -> list[TicketType]:
    rows = (await conn.execute(sa.select(ticket_types).where(ticket_types.c.event_id == event_id))).all()
    return [
        TicketType(
            id=r.id,
            event_id=r.event_id,
            name=r.name,
            price=Money(amount=r.price, currency=r.currency),
            quota=r.quota,
            sold=r.sold,
            requires_personalisation=r.requires_personalisation,
        )
        for r in rows
    ]


async def load_time_slots(conn: AsyncConnection, event_id: str) -> list[TimeSlot]:
    rows = (await conn.execute(sa.select(time_slots).where(time_slots.c.event_id == event_id))).all()
    return [
        TimeSlot(
            id=r.id, event_id=r.event_id, label=r.label, starts_at=r.starts_at, capacity=r.capacity, sold=r.sold,
            cancelled=r.cancelled,
        )
        for r in rows
    ]


async def adjust_inventory(
    conn: AsyncConnection, ticket_type_id: str, time_slot_id: str | None, delta: int
) -> None:
    """Take (+) or give back (-) seats; the CHECK constraints refuse overselling."""
    await conn.execute(
        ticket_types.update()
        .where(ticket_types.c.id == ticket_type_id)
        .values(sold=ticket_types.c.sold + delta)
    )
    if time_slot_id:
        await conn.execute(
            time_slots.update()
            .where(time_slots.c.id == time_slot_id)
            .values(sold=time_slots.c.sold + delta)
        )


async def load_order_heads(conn: AsyncConnection, codes: Sequence[str]) -> dict[str, Order]:
    """Orders without their tickets, in one query: for readers of money only (reconciliation)."""
    if not codes:
        return {}
    rows = (await conn.execute(sa.select(orders).where(orders.c.code.in_(list(codes))))).all()
    return {r.code: _order_from_row(r, []) for r in rows}
