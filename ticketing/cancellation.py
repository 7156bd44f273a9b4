"""Cancelling a whole order, or single tickets where the event allows it, as pure functions.

Cancellation is final: tickets become `invalid:cancelled`, their seats go back
to the quota, an open (pending) payment is voided. It never refunds by itself
(seed 002: "removing a purchase does not refund it"); a refund is an explicit
option, priced here on the cancelled order so that the API's answer, the
history and the workflow's child refund agree on it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from ticketing.errors import ActionNotAllowed, DomainError
from ticketing.inventory import InventoryDelta, seat_deltas
from ticketing.models import Event, Order, OrderEvent, Processor, RefundKind, Ticket
from ticketing.money import total
from ticketing.policies.actions import Refusal, cancel_refusal, voluntary_refundable
from ticketing.processors import CAPABILITIES
from ticketing.refunds import RefundQuote, RefundRequest, quote_refund
from ticketing.states import (
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    TICKET_TRANSITIONS,
    OrderStatus,
    PaymentStatus,
    TicketState,
    transition,
)


class RefundDecision(StrEnum):
    """What the API answers in `refund`; the history says `none` or `requested`."""

    NOT_REQUESTED = "not-requested"
    REQUESTED = "requested"
    NOTHING_TO_REFUND = "nothing-to-refund"


class CancelRequest(BaseModel):
    reason: str = Field(min_length=3, max_length=500)
    refund: bool = False
    ticket_ids: list[str] | None = None


class Cancellation(BaseModel):
    model_config = ConfigDict(frozen=True)

    order: Order
    history: list[OrderEvent]
    inventory: list[InventoryDelta]
    ticket_ids: list[str]
    whole_order: bool
    payment_voided: bool
    refund: RefundDecision
    refund_quote: RefundQuote | None = None
    refund_refusal: Refusal | None = None


def refund_operation_id(operation_id: str) -> str:
    """The child refund's workflow id: derived from the cancellation's, so a replay finds the same child."""
    return f"{operation_id}/refund"


def refund_id_for(operation_id: str) -> str:
    """The ledger id of the child refund, the same scheme as the refund API's."""
    return "rf_" + hashlib.sha256(refund_operation_id(operation_id).encode()).hexdigest()[:16]


def _cancellable(ticket: Ticket) -> bool:
    return TicketState.CANCELLED in TICKET_TRANSITIONS[ticket.state]


def _selected(order: Order, ticket_ids: list[str]) -> list[Ticket]:
    if not ticket_ids:
        raise DomainError("list at least one ticket, or none to cancel the whole order", type="invalid-request")
    if len(set(ticket_ids)) != len(ticket_ids):
        raise DomainError("a ticket is listed twice", type="duplicate-tickets")
    chosen = [order.ticket(i) for i in ticket_ids]
    for t in chosen:
        if t.state is TicketState.CANCELLED:
            raise ActionNotAllowed(f"ticket {t.id} is already cancelled", type="ticket-already-cancelled")
        if not _cancellable(t):
            raise ActionNotAllowed(f"ticket {t.id} is {t.state.value}", type="ticket-invalid")
    return chosen


def cancel_order(
    order: Order, event: Event, request: CancelRequest, *, actor: str, now: datetime, operation_id: str
) -> Cancellation:
    """Cancel the order (or the listed tickets), or refuse with the same type the action list shows."""
    if refusal := cancel_refusal(order, event):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)
    holders = [t for t in order.tickets if _cancellable(t)]
    chosen = holders if request.ticket_ids is None else _selected(order, request.ticket_ids)
    whole = {t.id for t in chosen} == {t.id for t in holders}
    if not whole:
        if not event.policy.allow_item_cancellation:
            raise ActionNotAllowed(
                "this event does not allow cancelling single tickets; cancel the whole order",
                type="item-cancellation-not-allowed",
            )
        if order.status is not OrderStatus.PAID:
            raise ActionNotAllowed(
                f"single tickets can only be cancelled on a paid order, not a {order.status.value} one",
                type=f"order-{order.status.value}",
            )
    ids = {t.id for t in chosen}
    tickets = [
        t.model_copy(update={"state": transition(TICKET_TRANSITIONS, t.state, TicketState.CANCELLED, what="ticket")})
        if t.id in ids
        else t
        for t in order.tickets
    ]
    update: dict[str, object] = {"tickets": tickets}
    voided = False
    if whole:
        update["status"] = transition(ORDER_TRANSITIONS, order.status, OrderStatus.CANCELLED, what="order")
        if order.payment.status is PaymentStatus.PENDING:
            status = transition(PAYMENT_TRANSITIONS, order.payment.status, PaymentStatus.VOIDED, what="payment")
            update["payment"] = order.payment.model_copy(update={"status": status})
            voided = True
    after = order.model_copy(update=update)
    quote, refusal = None, None
    if request.refund:
        planned = refund_after_cancellation(
            after.model_copy(update={"version": order.version + 1}), event, [t.id for t in chosen], whole=whole,
            reason=request.reason,
        )
        quote, refusal = (planned, None) if isinstance(planned, RefundQuote) else (None, planned)
    decision = (
        RefundDecision.NOT_REQUESTED
        if not request.refund
        else RefundDecision.REQUESTED
        if quote
        else RefundDecision.NOTHING_TO_REFUND
    )
    history = _history(
        order, chosen, whole=whole, voided=voided, decision=decision, refusal=refusal,
        reason=request.reason, actor=actor, now=now, operation_id=operation_id,
    )
    return Cancellation(
        order=after,
        history=history,
        inventory=seat_deltas((t, t.time_slot_id, -1) for t in chosen),
        ticket_ids=[t.id for t in chosen],
        whole_order=whole,
        payment_voided=voided,
        refund=decision,
        refund_quote=quote,
        refund_refusal=refusal,
    )


def refund_after_cancellation(
    cancelled: Order, event: Event, ticket_ids: list[str], *, whole: bool, reason: str
) -> RefundQuote | Refusal:
    """The refund the option asks for: all that is refundable, or the cancelled tickets' prices.

    Cancelled tickets cannot be quoted as tickets any more, so single tickets are
    refunded as an amount (their prices, capped at what is refundable).
    """
    if cancelled.payment.processor is Processor.FREE:
        return Refusal(type="nothing-to-refund", reason="a free order has nothing to refund")
    if whole:
        request = RefundRequest(kind=RefundKind.FULL, reason=reason)
    else:
        prices = total([cancelled.ticket(i).price for i in ticket_ids], cancelled.currency)
        refundable = voluntary_refundable(cancelled)
        amount = prices if prices <= refundable else refundable
        if amount.is_zero:
            return Refusal(type="nothing-to-refund", reason="nothing is left to refund")
        request = RefundRequest(kind=RefundKind.AMOUNT, reason=reason, amount=amount)
    try:
        return quote_refund(cancelled, event, request, CAPABILITIES[cancelled.payment.processor])
    except DomainError as err:
        return Refusal(type=err.type, reason=err.detail)


def _history(
    order: Order,
    chosen: list[Ticket],
    *,
    whole: bool,
    voided: bool,
    decision: RefundDecision,
    refusal: Refusal | None,
    reason: str,
    actor: str,
    now: datetime,
    operation_id: str,
) -> list[OrderEvent]:
    refund: dict[str, object] = {"refund": "requested" if decision is RefundDecision.REQUESTED else "none"}
    if decision is RefundDecision.REQUESTED:
        refund["refund_id"] = refund_id_for(operation_id)
    if refusal is not None:
        refund["refund_refusal"] = refusal.type
    common = {"operation_id": operation_id}
    events = []
    if whole:
        events.append(
            OrderEvent(
                type="order-cancelled",
                actor=actor,
                at=now,
                data={
                    **common, "reason": reason, "tickets": [t.id for t in chosen], **refund,
                    "payment": "voided" if voided else order.payment.status.value,
                },
                dedupe_key=f"order-cancelled:{operation_id}",
            )
        )
    for t in chosen:
        events.append(
            OrderEvent(
                type="item-canceled",
                actor=actor,
                at=now,
                data={**common, "ticket_id": t.id, "reason": reason, **refund},
                dedupe_key=f"item-canceled:{operation_id}:{t.id}",
            )
        )
    for t in chosen:
        events.append(
            OrderEvent(
                type="item-invalidated",
                actor=actor,
                at=now,
                data={**common, "ticket_id": t.id, "reason": "cancelled"},
                dedupe_key=f"item-invalidated:{operation_id}:{t.id}",
            )
        )
    return events

