"""The refund's effect on the order: totals, tickets and history, as pure functions.

Each function takes the order and refund as they are and returns them as
they must be written, with the history events, in one store transaction.
"""

from __future__ import annotations

from datetime import datetime

from ticketing.errors import ActionNotAllowed
from ticketing.models import Order, OrderEvent, Processor, Refund
from ticketing.money import Money
from ticketing.refunds import RefundQuote, history_event, move_refund
from ticketing.states import TICKET_TRANSITIONS, RefundStatus, TicketState, transition

Change = tuple[Order, Refund, list[OrderEvent]]


def _set_tickets(order: Order, ticket_ids: list[str], target: TicketState, only_from: TicketState | None) -> Order:
    wanted = set(ticket_ids)
    tickets = []
    for ticket in order.tickets:
        if ticket.id in wanted and ticket.state is not target and (only_from is None or ticket.state is only_from):
            state = transition(TICKET_TRANSITIONS, ticket.state, target, what="ticket")
            ticket = ticket.model_copy(update={"state": state})  # noqa: PLW2901
        tickets.append(ticket)
    return order.model_copy(update={"tickets": tickets})


def _totals(order: Order, pending: int = 0, refunded: int = 0) -> Order:
    cur = order.currency
    return order.model_copy(
        update={
            "pending_refund_total": Money(amount=order.pending_refund_total.amount + pending, currency=cur),
            "refunded_total": Money(amount=order.refunded_total.amount + refunded, currency=cur),
        }
    )


def open_refund(
    order: Order,
    quote: RefundQuote,
    *,
    refund_id: str,
    workflow_id: str,
    actor: str,
    now: datetime,
    needs_approval: bool,
) -> Change:
    """Write the refund to the ledger before any money moves; reserve its amount."""
    refund = Refund(
        id=refund_id,
        order_code=order.code,
        kind=quote.kind,
        amount=quote.amount,
        ticket_ids=quote.tickets_invalidated,
        fees_kept=quote.fees_kept,
        reason=quote.reason,
        status=RefundStatus.REQUESTED,
        processor=quote.processor,
        workflow_id=workflow_id,
        requested_by=actor,
        created_at=now,
        updated_at=now,
    )
    order = _set_tickets(order, quote.tickets_invalidated, TicketState.REFUNDED, None)
    events = [
        history_event(
            "refunding-items", actor, now, refund, kind=quote.kind.value, reason=quote.reason,
            processor=quote.processor.value,
        )
    ]
    if quote.processor is Processor.FREE:
        refund = move_refund(refund, RefundStatus.SUCCEEDED, now)
        events.append(history_event("item-refunded", actor, now, refund))
        return order, refund, events
    order = _totals(order, pending=quote.amount.amount)
    if needs_approval:
        target = RefundStatus.AWAITING_APPROVAL
    elif quote.processor is Processor.MANUAL:
        target = RefundStatus.AWAITING_MANUAL
    else:
        target = RefundStatus.REFUNDING
    return order, move_refund(refund, target, now), events


def approve(order: Order, refund: Refund, *, approver: str, now: datetime) -> Change:
    target = RefundStatus.AWAITING_MANUAL if refund.processor is Processor.MANUAL else RefundStatus.REFUNDING
    refund = move_refund(refund, target, now, approved_by=approver)
    return order, refund, [history_event("refund-approved", approver, now, refund)]


def reject(order: Order, refund: Refund, *, actor: str, reason: str, now: datetime) -> Change:
    """An unapproved or withdrawn refund: release the amount and give the tickets back."""
    order = _totals(order, pending=-refund.amount.amount)
    order = _set_tickets(order, refund.ticket_ids, TicketState.VALID, TicketState.REFUNDED)
    refund = move_refund(refund, RefundStatus.REJECTED, now, failure_reason=reason)
    return order, refund, [history_event("refund-rejected", actor, now, refund, reason=reason)]


def submitted(order: Order, refund: Refund, *, processor_refund_id: str, actor: str, now: datetime) -> Change:
    refund = move_refund(refund, RefundStatus.CONFIRMING, now, processor_refund_id=processor_refund_id)
    event = history_event("confirming-refund", actor, now, refund, processor_refund_id=processor_refund_id)
    return order, refund, [event]


def succeeded(
    order: Order,
    refund: Refund,
    *,
    actor: str,
    now: datetime,
    processor_refund_id: str | None = None,
    reference: str | None = None,
) -> Change:
    """Money is back with the customer: pending becomes refunded."""
    was = refund.status
    if was is RefundStatus.FAILED:
        if refund.amount > order.refundable_total:
            raise ActionNotAllowed(
                f"{refund.amount.display()} is more than the refundable {order.refundable_total.display()}",
                type="amount-exceeds-refundable",
            )
        order = _totals(order, refunded=refund.amount.amount)
        order = _set_tickets(order, refund.ticket_ids, TicketState.REFUNDED, TicketState.VALID)
    else:
        order = _totals(order, pending=-refund.amount.amount, refunded=refund.amount.amount)
    changes: dict[str, object] = {}
    if processor_refund_id:
        changes["processor_refund_id"] = processor_refund_id
    if reference:
        changes["manual_reference"] = reference
        changes["confirmed_by"] = actor
    refund = move_refund(refund, RefundStatus.SUCCEEDED, now, failure_reason=None, **changes)
    kind = "marked-refunded" if reference else "item-refunded"
    data: dict[str, object] = {"reference": reference} if reference else {}
    return order, refund, [history_event(kind, actor, now, refund, **data)]


def failed(order: Order, refund: Refund, *, reason: str, actor: str, now: datetime) -> Change:
    """The refund did not happen (or was reversed): release the money, give the tickets back."""
    if refund.status is RefundStatus.SUCCEEDED:
        order = _totals(order, refunded=-refund.amount.amount)
    else:
        order = _totals(order, pending=-refund.amount.amount)
    order = _set_tickets(order, refund.ticket_ids, TicketState.VALID, TicketState.REFUNDED)
    late = refund.status is RefundStatus.SUCCEEDED
    refund = move_refund(refund, RefundStatus.FAILED, now, failure_reason=reason)
    return order, refund, [history_event("refund-error", actor, now, refund, reason=reason, after_success=late)]


def retried(order: Order, refund: Refund, *, actor: str, now: datetime) -> Change:
    """A new processor attempt (new idempotency key) for a failed refund."""
    if refund.amount > order.refundable_total:
        raise ActionNotAllowed(
            f"{refund.amount.display()} is more than the refundable {order.refundable_total.display()}",
            type="amount-exceeds-refundable",
        )
    order = _totals(order, pending=refund.amount.amount)
    order = _set_tickets(order, refund.ticket_ids, TicketState.REFUNDED, TicketState.VALID)
    refund = move_refund(
        refund, RefundStatus.REFUNDING, now, attempt=refund.attempt + 1, failure_reason=None, processor_refund_id=None
    )
    return order, refund, [history_event("refunding-items", actor, now, refund, attempt=refund.attempt, retry=True)]
