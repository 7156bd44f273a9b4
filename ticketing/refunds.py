"""Refund quotes and the ledger transitions of a refund.

A quote is what the agent confirms; its hash pins the order version, so a
refund is executed exactly as previewed or not at all.

Tickets transferred away are not refunded by a voluntary refund (the recipient's replacement
stays valid): a ticket refund refuses them (`ticket-transferred`), a full or amount refund gives
back only what the giver's remaining tickets are worth, and the quote lists what it keeps and why.
An event cancellation (`event_cancelled`) refunds the payer for every ticket.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from pydantic import BaseModel, Field

from ticketing.errors import ActionNotAllowed, DomainError
from ticketing.models import Event, Order, OrderEvent, Processor, Refund, RefundKind
from ticketing.money import Money, total
from ticketing.policies.actions import refund_refusal, transferred_away, voluntary_refundable
from ticketing.states import REFUND_TRANSITIONS, RefundStatus, TicketState, transition


class ProcessorCapabilities(BaseModel):
    """What a payment adapter can do; the quote and the workflow read the same flags."""

    async_confirmation: bool
    partial_refunds: bool
    succeeded_is_final: bool
    manual: bool


class RefundRequest(BaseModel):
    kind: RefundKind
    reason: str = Field(min_length=3, max_length=500)
    ticket_ids: list[str] = []
    amount: Money | None = None
    event_cancelled: bool = False  # the organiser's refund: tickets transferred away are paid back too


class QuotedTicket(BaseModel):
    ticket_id: str
    amount: Money


class KeptTicket(BaseModel):
    """A ticket the refund does not pay back, and why (a quote line the agent reads)."""

    ticket_id: str
    amount: Money
    reason_type: str
    reason: str


class RefundQuote(BaseModel):
    order_code: str
    order_version: int
    kind: RefundKind
    reason: str
    amount: Money
    tickets: list[QuotedTicket]
    kept: list[KeptTicket] = []
    fees_kept: Money
    tickets_invalidated: list[str]
    processor: Processor
    automatic: bool
    quote_hash: str


def _refuse(type_: str, detail: str) -> ActionNotAllowed:
    return ActionNotAllowed(detail, type=type_)


def _quoted_tickets(order: Order, event: Event, ticket_ids: list[str]) -> list[QuotedTicket]:
    if len(set(ticket_ids)) != len(ticket_ids):
        raise _refuse("duplicate-tickets", "a ticket is listed twice")
    quoted = []
    for ticket_id in ticket_ids:
        ticket = order.ticket(ticket_id)
        if ticket.state is TicketState.TRANSFERRED:
            raise _refuse(
                "ticket-transferred",
                f"ticket {ticket_id} was transferred to another holder, whose ticket is valid; "
                "only an event cancellation refunds it",
            )
        if ticket.state in (TicketState.REFUNDED, TicketState.CANCELLED):
            raise _refuse(
                f"ticket-already-{ticket.state.reason}",
                f"ticket {ticket_id} is already {ticket.state.reason}",
            )
        if not ticket.is_valid:
            raise _refuse("ticket-invalid", f"ticket {ticket_id} is {ticket.state.value}")
        if ticket.used and not event.policy.refund_scanned_tickets:
            raise _refuse(
                "ticket-used", f"ticket {ticket_id} has been scanned and the event refunds no used tickets"
            )
        quoted.append(QuotedTicket(ticket_id=ticket_id, amount=ticket.price))
    return quoted


def quote_refund(
    order: Order, event: Event, request: RefundRequest, capabilities: ProcessorCapabilities
) -> RefundQuote:
    """Price a refund request, or refuse it with a stable type."""
    if refusal := refund_refusal(order, event, event_cancelled=request.event_cancelled):
        raise _refuse(refusal.type, refusal.reason)
    currency = order.currency
    refundable = order.refundable_total if request.event_cancelled else voluntary_refundable(order)
    kept = [] if request.event_cancelled else _kept_for_transfers(order)
    tickets: list[QuotedTicket] = []
    invalidated: list[str] = []
    if request.kind is RefundKind.FULL:
        if request.ticket_ids or request.amount is not None:
            raise DomainError("a full refund takes neither tickets nor an amount", type="invalid-request")
        eligible = [t.id for t in order.valid_tickets]
        tickets = _quoted_tickets(order, event, eligible)
        amount = refundable
        if event.policy.refund_invalidates_tickets:
            invalidated = eligible
    elif request.kind is RefundKind.TICKETS:
        if not request.ticket_ids or request.amount is not None:
            raise DomainError("a ticket refund lists tickets and no amount", type="invalid-request")
        tickets = _quoted_tickets(order, event, request.ticket_ids)
        amount = total([q.amount for q in tickets], currency)
        if event.policy.refund_invalidates_tickets:
            invalidated = list(request.ticket_ids)
    else:
        if request.amount is None or request.ticket_ids:
            raise DomainError("an amount refund carries an amount and no tickets", type="invalid-request")
        if request.amount.currency != currency:
            raise _refuse(
                "currency-mismatch",
                f"the order was paid in {currency}, not {request.amount.currency}",
            )
        if request.amount.amount <= 0:
            raise DomainError("the amount must be positive", type="invalid-amount")
        amount = request.amount
    if order.payment.processor is not Processor.FREE:
        if amount > refundable:
            held = total([k.amount for k in kept], currency)
            held_text = f", tickets transferred away keep {held.display()}" if kept else ""
            raise _refuse(
                "amount-exceeds-refundable",
                f"{amount.display()} is more than the refundable {refundable.display()}{held_text}",
            )
        if amount.is_zero:
            raise _refuse("nothing-to-refund", "nothing is left to refund")
        partial = amount.amount + order.refunded_total.amount + order.pending_refund_total.amount
        if not capabilities.partial_refunds and partial < order.paid_total.amount:
            raise _refuse(
                "partial-refund-unsupported",
                f"{order.payment.processor.value} cannot refund part of a payment",
            )
    else:
        amount = Money.zero(currency)
    body = {
        "order": order.code,
        "version": order.version,
        "kind": request.kind.value,
        "amount": [amount.amount, amount.currency],
        "tickets": [[q.ticket_id, q.amount.amount] for q in tickets],
        "invalidated": invalidated,
        "processor": order.payment.processor.value,
        "reason": request.reason,
    }
    if kept:  # only then, so that a quote without them hashes as it did before they existed
        body["kept"] = [[k.ticket_id, k.amount.amount, k.reason_type] for k in kept]
    if request.event_cancelled:
        body["event_cancelled"] = True
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return RefundQuote(
        order_code=order.code,
        order_version=order.version,
        kind=request.kind,
        reason=request.reason,
        amount=amount,
        tickets=tickets,
        kept=kept,
        fees_kept=order.non_refundable_fees,
        tickets_invalidated=invalidated,
        processor=order.payment.processor,
        automatic=not capabilities.manual,
        quote_hash=digest,
    )


def _kept_for_transfers(order: Order) -> list[KeptTicket]:
    return [
        KeptTicket(
            ticket_id=t.id, amount=t.price, reason_type="ticket-transferred",
            reason=f"transferred to another holder ({t.replaced_by or 'replacement'} is valid); "
            "only an event cancellation refunds it",
        )
        for t in transferred_away(order)
    ]


def refund_summary(amount: Money, order_code: str, tickets: int, kind: str, *, then: str | None = None) -> str:
    """What every run of a refund says of itself in the Web UI: order and money, never who.

    The summary is stored unencrypted (every UI user reads it), so it holds only
    ids, counts and amounts. `then` says why this run exists, when it is not the first.
    """
    what = f"{tickets} ticket{'' if tickets == 1 else 's'}, {kind}" if tickets else kind
    text = f"Refund {amount.display()} on order {order_code} ({what})"
    return f"{text}: {then}" if then else text


def approval_threshold(event: Event, default: int | None) -> int | None:
    """The event's own threshold overrides the setting; None means no refund waits for approval."""
    return event.policy.refund_approval_threshold if event.policy.refund_approval_threshold is not None else default


def needs_approval(quote: RefundQuote, event: Event, default_threshold: int | None) -> bool:
    """Four eyes: a refund above the threshold waits for a second finance user."""
    threshold = approval_threshold(event, default_threshold)
    return threshold is not None and quote.amount.amount > threshold


def late_failure_workflow_id(refund_id: str, attempt: int) -> str:
    """The follow-up run that owns a refund Stripe failed after success: one per attempt."""
    return f"refund-late-failure/{refund_id}/attempt-{attempt}"


def late_answer_workflow_id(refund_id: str, attempt: int) -> str:
    """The follow-up run that settles a refund-error's own processor refund ending after its run closed."""
    return f"refund-late-answer/{refund_id}/attempt-{attempt}"


def follow_up_workflow_ids(refund_id: str, attempt: int) -> tuple[str, str]:
    """The runs that may act for a refund after its own run closed, on this attempt."""
    return late_failure_workflow_id(refund_id, attempt), late_answer_workflow_id(refund_id, attempt)


def move_refund(refund: Refund, target: RefundStatus, at: datetime, **changes: object) -> Refund:
    """The only way a refund changes status."""
    transition(REFUND_TRANSITIONS, refund.status, target, what="refund")
    return refund.model_copy(update={"status": target, "updated_at": at, **changes})


def history_event(type_: str, actor: str, at: datetime, refund: Refund, **data: object) -> OrderEvent:
    return OrderEvent(
        type=type_,
        actor=actor,
        at=at,
        data={
            "refund_id": refund.id,
            "amount": refund.amount.amount,
            "currency": refund.amount.currency,
            "tickets": refund.ticket_ids,
            **data,
        },
    )
