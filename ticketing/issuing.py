"""Issuing identifiers and building new orders.

Barcodes carry 130 bits from `secrets`, in an alphabet QR alphanumeric mode
encodes compactly, so they cannot be guessed from each other or from the order.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from ticketing.models import (
    PROCESSOR_FOR_METHOD,
    Contact,
    Event,
    Fee,
    Order,
    Payment,
    PaymentMethod,
    Ticket,
    TicketType,
)
from ticketing.money import Money, total
from ticketing.states import OrderStatus, PaymentStatus

_BARCODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: read aloud at the gate
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def new_barcode() -> str:
    return "".join(secrets.choice(_BARCODE_ALPHABET) for _ in range(26))


def new_order_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def build_order(
    *,
    event: Event,
    items: Sequence[tuple[TicketType, str | None]],
    contact: Contact,
    method: PaymentMethod,
    fees: Sequence[Fee] = (),
    created_at: datetime,
    status: OrderStatus = OrderStatus.PAID,
    payment_reference: str | None = None,
    card_last4: str | None = None,
    code: str | None = None,
) -> Order:
    """A new order: one ticket per (ticket type, time slot) item, priced from its type."""
    code = code or new_order_code()
    tickets = [
        Ticket(
            id=new_id("tkt"),
            order_code=code,
            barcode=new_barcode(),
            ticket_type_id=ticket_type.id,
            time_slot_id=slot_id,
            price=Money.zero(event.currency) if method is PaymentMethod.FREE else ticket_type.price,
            requires_personalisation=ticket_type.requires_personalisation,
        )
        for ticket_type, slot_id in items
    ]
    fee_list = [] if method is PaymentMethod.FREE else list(fees)
    amount = total([t.price for t in tickets] + [f.amount for f in fee_list], event.currency)
    paid = status in (OrderStatus.PAID, OrderStatus.CANCELLED)
    return Order(
        code=code,
        event_id=event.id,
        status=status,
        contact=contact,
        payment=Payment(
            method=method,
            processor=PROCESSOR_FOR_METHOD[method],
            reference=payment_reference,
            card_last4=card_last4 if method is PaymentMethod.CARD else None,
            status=PaymentStatus.SUCCEEDED if paid else PaymentStatus.PENDING,
            amount=amount,
        ),
        fees=fee_list,
        tickets=tickets,
        refunded_total=Money.zero(event.currency),
        pending_refund_total=Money.zero(event.currency),
        created_at=created_at,
    )
