"""Reservations with a payment deadline (Liveto: Reserved, Invoicing, payment deadline and URL;
Intellitix: Reserved -> Expired), as pure functions.

A reserved order holds its seats until its deadline. Before it, the buyer is reminded with the
payment link (a signed token naming the order, valid until the deadline); at it, the order
becomes `expired`, its pending payment `voided`, its tickets `invalid:cancelled` and its seats
go back to the quotas. A payment that arrives first (finance marks the invoice paid, or the
processor reports it) makes it `paid`, and its tickets are then delivered.

The payment then records what it was actually paid by, whatever the order was reserved with:
a refund goes back the way the money came (a Stripe payment intent is refunded at Stripe, a
bank transfer finance saw is paid back by hand).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ticketing.errors import ActionNotAllowed, DomainError
from ticketing.inventory import InventoryDelta, seat_deltas
from ticketing.models import PROCESSOR_FOR_METHOD, Event, Order, OrderEvent, PaymentMethod, Processor
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


def _refuse(order: Order, event: Event | None) -> None:
    if refusal := reservation_refusal(order, event):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)


def check_deadline(
    order: Order, event: Event, deadline: datetime, *, now: datetime, current: datetime | None = None
) -> None:
    """A deadline is in the future, and an extension moves it later; never for an order being called off."""
    _refuse(order, event)
    if deadline <= now:
        raise ActionNotAllowed("the deadline must be in the future", type="deadline-in-past")
    if current is not None and deadline <= current:
        raise ActionNotAllowed("an extension moves the deadline later", type="deadline-not-later")


def check_waiting(order: Order, event: Event) -> None:
    """A reservation's deadline moves, and its buyer is reminded to pay, only while it waits for its
    payment, and never for an order being called off with its event or time slot."""
    _refuse(order, event)


def check_processor_payment(order: Order, event: Event, received: Money) -> None:
    """A processor's payment settles the reservation only while it waits, only for its whole amount, and
    never for an order whose event or time slot is called off (that money is finance's to send back)."""
    _refuse(order, event)
    if received != order.payment.amount:
        raise ActionNotAllowed(
            f"the processor received {received.display()}, the order is {order.payment.amount.display()}",
            type="payment-amount-mismatch",
        )


def paid_by(order: Order, processor: Processor, reference: str) -> bool:
    """This very payment settled the order already: a redelivered webhook, not money for nothing."""
    p = order.payment
    return p.status is PaymentStatus.SUCCEEDED and p.processor is processor and p.reference == reference


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


def cancelled_while_waiting(order: Order) -> bool:
    """The order was cancelled while its reservation waited (by an agent, or with its event or time slot):
    that cancellation voided the payment and released the seats, so the deadline has nothing left to do
    and the reservation ends `cancelled` rather than failing on a refused expiry."""
    return order.status is OrderStatus.CANCELLED


def expire_reservation(
    order: Order, *, now: datetime, operation_id: str
) -> tuple[Order, OrderEvent, list[InventoryDelta]]:
    """The deadline passed unpaid: expired, payment voided, tickets cancelled, seats released."""
    _refuse(order, None)
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


# The method a payment records when the order's own method belongs to another processor.
_METHOD_OF: dict[Processor, PaymentMethod] = {
    Processor.STRIPE: PaymentMethod.CARD,
    Processor.MANUAL: PaymentMethod.INVOICE,
}


def paid_method(order: Order, processor: Processor) -> PaymentMethod:
    """The order's own method when that processor takes it (invoice stays invoice), else the processor's usual one."""
    if processor not in _METHOD_OF:
        raise DomainError(f"a reservation is not paid through {processor.value}", type="invalid-request")
    return order.payment.method if PROCESSOR_FOR_METHOD[order.payment.method] is processor else _METHOD_OF[processor]


def pay_reservation(
    order: Order, show: Event, *, processor: Processor, reference: str | None, actor: str, now: datetime,
    operation_id: str,
) -> tuple[Order, OrderEvent]:
    """The payment arrived before the deadline: paid, recording the processor, method and reference it came by.

    Stripe's payment keeps the intent's id as its reference, so a later refund goes to Stripe against it;
    finance's mark-paid is `manual`, so its refund is finance's payout. An order whose event or time slot
    is called off is refused (`event-cancelled`, `time-slot-cancelled`): the payment is not applied, and
    a processor's payment becomes finance's `payment-unapplied` item (the webhook) instead.
    """
    _refuse(order, show)
    if processor is Processor.STRIPE and not reference:
        raise DomainError("a Stripe payment names its payment intent", type="invalid-request")
    status = transition(ORDER_TRANSITIONS, order.status, OrderStatus.PAID, what="order")
    method = paid_method(order, processor)
    keep_reference = order.payment.processor is processor
    payment = order.payment.model_copy(
        update={
            "status": transition(PAYMENT_TRANSITIONS, order.payment.status, PaymentStatus.SUCCEEDED, what="payment"),
            "processor": processor,
            "method": method,
            # A reference of another processor (an invoice number on a Stripe-paid order) would be refunded wrongly.
            "reference": reference or (order.payment.reference if keep_reference else None),
            "card_last4": order.payment.card_last4 if keep_reference else None,
        }
    )
    event = OrderEvent(
        type=PAID_EVENT, actor=actor, at=now,
        data={"operation_id": operation_id, "reference": reference, "amount": order.payment.amount.amount,
              "processor": processor.value, "method": method.value},
        dedupe_key=f"{PAID_EVENT}:{operation_id}",
    )
    return order.model_copy(update={"status": status, "payment": payment}), event
