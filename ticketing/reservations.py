"""Reservations with a payment deadline (Liveto: Reserved, Invoicing, payment deadline and URL;
Intellitix: Reserved -> Expired), as pure functions.

A reserved order holds its seats until its deadline. Before it, the buyer is reminded with the
payment link (a signed token naming the order, valid until the deadline); at it, the order
becomes `expired`, its pending payment `voided`, its tickets `invalid:cancelled` and its seats
go back to the quotas. A payment that arrives first (finance marks the invoice paid, or the
processor reports it) makes it `paid`, and its tickets are then delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ticketing.errors import ActionNotAllowed
from ticketing.inventory import InventoryDelta, seat_deltas
from ticketing.models import Order, OrderEvent
from ticketing.money import Money
from ticketing.policies.actions import reservation_refusal
from ticketing.states import (
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    TICKET_TRANSITIONS,
    OrderStatus,
    PaymentStatus,
    TicketState,
    transition,
)

LINK_PURPOSE = "payment"  # of the payment link's signed token (ticketing.signed_links)
OPENED_EVENT = "reservation-deadline-set"
EXTENDED_EVENT = "reservation-deadline-extended"
EXPIRED_EVENT = "reservation-expired"
PAID_EVENT = "payment-received"


def _refuse(order: Order) -> None:
    if refusal := reservation_refusal(order):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)


def check_deadline(order: Order, deadline: datetime, *, now: datetime, current: datetime | None = None) -> None:
    """A deadline is in the future, and an extension moves it later."""
    _refuse(order)
    if deadline <= now:
        raise ActionNotAllowed("the deadline must be in the future", type="deadline-in-past")
    if current is not None and deadline <= current:
        raise ActionNotAllowed("an extension moves the deadline later", type="deadline-not-later")


def check_processor_payment(order: Order, received: Money) -> None:
    """A processor's payment settles the reservation only while it waits, and only for its whole amount."""
    _refuse(order)
    if received != order.payment.amount:
        raise ActionNotAllowed(
            f"the processor received {received.display()}, the order is {order.payment.amount.display()}",
            type="payment-amount-mismatch",
        )


def reminder_times(deadline: datetime, before: Sequence[timedelta]) -> list[datetime]:
    """When the reminders of a deadline go out: `before` it, earliest first."""
    return sorted({deadline - b for b in before if b > timedelta(0)})


def deadline_event(order: Order, deadline: datetime, *, extended: bool, actor: str, now: datetime,
                   operation_id: str) -> OrderEvent:
    kind = EXTENDED_EVENT if extended else OPENED_EVENT
    return OrderEvent(
        type=kind, actor=actor, at=now,
        data={"deadline": deadline.isoformat(), "operation_id": operation_id},
        dedupe_key=f"{kind}:{operation_id}:{deadline.isoformat()}",
    )


def expire_reservation(
    order: Order, *, now: datetime, operation_id: str
) -> tuple[Order, OrderEvent, list[InventoryDelta]]:
    """The deadline passed unpaid: expired, payment voided, tickets cancelled, seats released."""
    _refuse(order)
    status = transition(ORDER_TRANSITIONS, order.status, OrderStatus.EXPIRED, what="order")
    payment = order.payment.model_copy(
        update={"status": transition(PAYMENT_TRANSITIONS, order.payment.status, PaymentStatus.VOIDED, what="payment")}
    )
    released = [t for t in order.tickets if t.is_valid]
    tickets = [
        t.model_copy(update={"state": transition(TICKET_TRANSITIONS, t.state, TicketState.CANCELLED, what="ticket")})
        if t.is_valid else t
        for t in order.tickets
    ]
    event = OrderEvent(
        type=EXPIRED_EVENT, actor="ticketops", at=now,
        data={"operation_id": operation_id, "tickets": [t.id for t in released]},
        dedupe_key=f"{EXPIRED_EVENT}:{operation_id}",
    )
    after = order.model_copy(update={"status": status, "payment": payment, "tickets": tickets})
    return after, event, seat_deltas((t, t.time_slot_id, -1) for t in released)


def pay_reservation(
    order: Order, *, reference: str | None, actor: str, now: datetime, operation_id: str
) -> tuple[Order, OrderEvent]:
    """The payment arrived before the deadline: paid, with the payment's reference."""
    _refuse(order)
    status = transition(ORDER_TRANSITIONS, order.status, OrderStatus.PAID, what="order")
    payment = order.payment.model_copy(
        update={
            "status": transition(PAYMENT_TRANSITIONS, order.payment.status, PaymentStatus.SUCCEEDED, what="payment"),
            "reference": reference or order.payment.reference,
        }
    )
    event = OrderEvent(
        type=PAID_EVENT, actor=actor, at=now,
        data={"operation_id": operation_id, "reference": reference, "amount": order.payment.amount.amount},
        dedupe_key=f"{PAID_EVENT}:{operation_id}",
    )
    return order.model_copy(update={"status": status, "payment": payment}), event
