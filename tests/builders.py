"""Small builders of domain objects for tests; real code paths, readable defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ticketing.issuing import build_order
from ticketing.models import (
    Contact,
    Event,
    EventPolicy,
    Fee,
    FeeKind,
    Order,
    PaymentMethod,
    TicketType,
    TimeSlot,
)
from ticketing.money import Money
from ticketing.states import OrderStatus

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def eur(cents: int) -> Money:
    return Money(amount=cents, currency="EUR")


def make_event(
    event_id: str = "evt_concert", policy: EventPolicy | None = None, personalised: bool = False
) -> tuple[Event, list[TicketType], list[TimeSlot]]:
    event = Event(
        id=event_id,
        name="Harbour Lights Concert",
        venue="Pier 4",
        starts_at=NOW + timedelta(days=30),
        currency="EUR",
        policy=policy or EventPolicy(),
    )
    types = [
        TicketType(id=f"{event_id}_ga", event_id=event_id, name="General admission", price=eur(3500), quota=1000),
        TicketType(
            id=f"{event_id}_vip",
            event_id=event_id,
            name="VIP",
            price=eur(9000),
            quota=100,
            requires_personalisation=personalised,
        ),
    ]
    slots = [
        TimeSlot(
            id=f"{event_id}_eve", event_id=event_id, label="Evening", starts_at=NOW + timedelta(days=30), capacity=800
        ),
        TimeSlot(
            id=f"{event_id}_late",
            event_id=event_id,
            label="Late",
            starts_at=NOW + timedelta(days=30, hours=3),
            capacity=400,
        ),
    ]
    return event, types, slots


def make_order(
    event: Event,
    types: list[TicketType],
    *,
    tickets: int = 2,
    vip: int = 0,
    method: PaymentMethod = PaymentMethod.CARD,
    status: OrderStatus = OrderStatus.PAID,
    email: str | None = "ada@example.com",
    service_fee: int = 250,
    booking_fee: int = 0,
    reference: str | None = None,
    slot: str | None = None,
) -> Order:
    fees = []
    if service_fee:
        fees.append(Fee(kind=FeeKind.SERVICE, amount=eur(service_fee), refundable=event.policy.refund_service_fees))
    if booking_fee:
        fees.append(Fee(kind=FeeKind.BOOKING, amount=eur(booking_fee), refundable=event.policy.refund_booking_fees))
    items = [(types[0], slot)] * tickets + [(types[1], slot)] * vip
    return build_order(
        event=event,
        items=items,
        contact=Contact(name="Ada Lovelace", email=email, mobile="+31600000000"),
        method=method,
        fees=fees,
        created_at=NOW,
        status=status,
        payment_reference=reference,
    )
