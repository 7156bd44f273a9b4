"""The refund's effect on the order: totals, tickets and history, as pure functions.

Each function takes the order and refund as they are and returns them as
they must be written, with the history events, in one store transaction.

This is the one refund rule: `apply` turns an action (finance's, the
workflow's) into a ledger move, and `judge` / `settle` turn a processor's
answer into one. The single-refund workflow, the event-cancellation batch, the
webhook and reconciliation all call these; none translates a processor status
on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from ticketing.errors import ActionNotAllowed
from ticketing.models import Order, OrderEvent, Processor, Refund
from ticketing.money import Money
from ticketing.reconciliation_records import ProcessorRefundStatus
from ticketing.refunds import RefundQuote, history_event, move_refund
from ticketing.states import ORDER_TRANSITIONS, TICKET_TRANSITIONS, OrderStatus, RefundStatus, TicketState, transition

Change = tuple[Order, Refund, list[OrderEvent]]


class RefundAction(StrEnum):
    """What can happen to a ledger refund; the values are the strings workflow histories carry."""

    SUBMITTED = "submitted"  # the processor took it and gave its refund id; confirmation follows
    SUCCEEDED = "succeeded"  # the money is back (processor) or finance paid by hand (`reference`)
    FAILED = "failed"  # the processor refused, failed, or failed after success
    RETRY = "retry"  # a new attempt, new idempotency key; its submission adopts an earlier paying one (`to_adopt`)
    APPROVE = "approve"  # the second finance user's yes
    REJECT = "reject"  # approval refused or expired


class ProcessorOutcome(BaseModel):
    """The processor's answer about one of its refunds: from a create call, a poll, a webhook or a listing."""

    processor_refund_id: str
    status: ProcessorRefundStatus
    failure_reason: str | None = None


class Settlement(StrEnum):
    """What a processor outcome means for a ledger refund (`judge`)."""

    # Nothing to write: not final yet, already settled the same way, or news about another attempt.
    NO_CHANGE = "no-change"
    # The ledger moves now (`settle`): refunding -> confirming / refunded / (confirming ->) refund-error,
    # confirming -> refunded / refund-error. Whoever holds the answer writes it.
    MOVE = "move"
    # The ledger says refunded and the processor says failed or canceled: the money came back to us.
    # Only the refund's Refund run applies it (`settle`), so finance is told and the order reopened;
    # a caller without that run starts the follow-up run (`late_failure_workflow_id`).
    LATE_FAILURE = "late-failure"
    # The processor failed a refund that finance has already paid by hand: not news.
    PAID_MANUALLY = "paid-manually"
    # The ledger gave up on the refund (refund-error, e.g. its confirmation window ran out while the processor
    # still had it pending) and that same processor refund has now ended. Succeeded: the money moved, so
    # refund-error -> refunded, tickets invalidated and the receipt sent as for any success (what finance's
    # retry would otherwise adopt). Failed: it stays refund-error, with the processor's reason. Only a run of
    # the refund applies it (`settle`); a caller without an open run starts the follow-up run
    # (`late_answer_workflow_id`).
    LATE_ANSWER = "late-answer"


_FAILED = (ProcessorRefundStatus.FAILED, ProcessorRefundStatus.CANCELED)
# The refund-error reason when the ledger gave up waiting: the processor's refund was still pending.
CONFIRMATION_TIMEOUT = "confirmation-timeout"


def steps(status: RefundStatus, outcome_status: ProcessorRefundStatus) -> list[RefundAction]:
    """The ledger actions, in order, that a processor status means for a refund in `status`."""
    if status is RefundStatus.REFUNDING:
        if outcome_status is ProcessorRefundStatus.SUCCEEDED:
            return [RefundAction.SUCCEEDED]
        if outcome_status in _FAILED:  # through confirming, so the failed refund keeps the processor's id
            return [RefundAction.SUBMITTED, RefundAction.FAILED]
        return [RefundAction.SUBMITTED]
    if status is RefundStatus.CONFIRMING:
        if outcome_status is ProcessorRefundStatus.SUCCEEDED:
            return [RefundAction.SUCCEEDED]
        if outcome_status in _FAILED:
            return [RefundAction.FAILED]
        return []
    if status is RefundStatus.SUCCEEDED and outcome_status in _FAILED:
        return [RefundAction.FAILED]
    return []


def judge(refund: Refund, outcome: ProcessorOutcome) -> Settlement:
    """What the processor's answer means for this ledger refund."""
    return judge_state(
        refund.status, refund.processor_refund_id, refund.manual_reference is not None, outcome, refund.failure_reason
    )


def judge_state(
    status: RefundStatus,
    processor_refund_id: str | None,
    paid_manually: bool,
    outcome: ProcessorOutcome,
    failure_reason: str | None = None,
) -> Settlement:
    """`judge` over the fields it reads, for a caller that holds a snapshot rather than the ledger row."""
    if processor_refund_id and processor_refund_id != outcome.processor_refund_id:
        return Settlement.NO_CHANGE  # about another attempt's processor refund
    if status is RefundStatus.FAILED:
        return _late_answer(processor_refund_id, paid_manually, failure_reason, outcome)
    if not steps(status, outcome.status):
        return Settlement.NO_CHANGE
    if status is RefundStatus.SUCCEEDED:
        return Settlement.PAID_MANUALLY if paid_manually else Settlement.LATE_FAILURE
    return Settlement.MOVE


def _late_answer(
    processor_refund_id: str | None, paid_manually: bool, failure_reason: str | None, outcome: ProcessorOutcome
) -> Settlement:
    """A refund-error hears of its own processor refund (the id the row records; none recorded: no news)."""
    if processor_refund_id != outcome.processor_refund_id or paid_manually:
        return Settlement.NO_CHANGE
    if outcome.status is ProcessorRefundStatus.SUCCEEDED:
        return Settlement.LATE_ANSWER
    if outcome.status in _FAILED and failure_reason == CONFIRMATION_TIMEOUT:  # the processor's word, not ours
        return Settlement.LATE_ANSWER
    return Settlement.NO_CHANGE  # still pending, or the failure the row already records


def failure_text(outcome: ProcessorOutcome) -> str:
    """The failure reason the ledger records for a processor's failure."""
    return outcome.failure_reason or outcome.status.value


def settle(order: Order, refund: Refund, outcome: ProcessorOutcome, *, actor: str, now: datetime) -> Change:
    """Write what `judge` says: a MOVE or a LATE_FAILURE (one or two steps), a LATE_ANSWER; else nothing."""
    verdict = judge(refund, outcome)
    if verdict is Settlement.LATE_ANSWER:
        return _settle_late_answer(order, refund, outcome, actor=actor, now=now)
    if verdict not in (Settlement.MOVE, Settlement.LATE_FAILURE):
        return order, refund, []
    events: list[OrderEvent] = []
    for action in steps(refund.status, outcome.status):
        order, refund, more = apply(
            order,
            refund,
            action,
            actor=actor,
            now=now,
            processor_refund_id=outcome.processor_refund_id,
            reason=failure_text(outcome),
        )
        events += more
    return order, refund, events


def _settle_late_answer(
    order: Order, refund: Refund, outcome: ProcessorOutcome, *, actor: str, now: datetime
) -> Change:
    """A refund-error's own processor refund ended: paid -> refunded; failed -> refund-error with its reason."""
    if outcome.status is ProcessorRefundStatus.SUCCEEDED:
        if refund.amount > order.refundable_total:
            # Its amount went to another refund meanwhile: the buyer was paid twice. The ledger cannot say so;
            # reconciliation's over-refunded item does, for finance to recover.
            return order, refund, []
        return succeeded(order, refund, actor=actor, now=now, processor_refund_id=outcome.processor_refund_id)
    reason = failure_text(outcome)
    refund = refund.model_copy(update={"failure_reason": reason, "updated_at": now})
    return order, refund, [history_event("refund-error", actor, now, refund, reason=reason, late_answer=True)]


class ProcessorCandidate(BaseModel):
    """A processor refund that names a ledger refund (its metadata), with the idempotency key it was made under."""

    outcome: ProcessorOutcome
    idempotency_key: str | None = None


_MAY_PAY = (ProcessorRefundStatus.PENDING, ProcessorRefundStatus.REQUIRES_ACTION)


def to_adopt(idempotency_key: str, candidates: Sequence[ProcessorCandidate]) -> ProcessorOutcome | None:
    """The processor refund a (re)submission under `idempotency_key` adopts instead of making a new one.

    This attempt's own refund (its key), whatever its status: the answer a lost response, a crash or an
    expired processor key kept from us. An earlier attempt's only while it paid or may still pay
    (succeeded, pending): a refund that went to refund-error and was paid later is adopted, never paid
    again. An earlier attempt that failed or was canceled moved no money; that is what a retry is for.
    Where several qualify (paid twice already: reconciliation's duplicate), the one that paid wins.
    """
    ranked: list[tuple[int, int, str, ProcessorOutcome]] = []
    for c in candidates:
        own = c.idempotency_key == idempotency_key
        status = c.outcome.status
        if status is ProcessorRefundStatus.SUCCEEDED:
            rank = 0
        elif status in _MAY_PAY:
            rank = 1
        elif own:
            rank = 2
        else:
            continue
        ranked.append((rank, 0 if own else 1, c.outcome.processor_refund_id, c.outcome))
    return min(ranked, key=lambda r: r[:3])[3] if ranked else None


def apply(
    order: Order,
    refund: Refund,
    action: RefundAction,
    *,
    actor: str,
    now: datetime,
    processor_refund_id: str | None = None,
    reason: str | None = None,
    reference: str | None = None,
) -> Change:
    """One action on the ledger; the state machine refuses what it does not allow."""
    if action is RefundAction.SUBMITTED:
        return submitted(order, refund, processor_refund_id=processor_refund_id or "", actor=actor, now=now)
    if action is RefundAction.SUCCEEDED:
        return succeeded(
            order, refund, actor=actor, now=now, processor_refund_id=processor_refund_id, reference=reference
        )
    if action is RefundAction.FAILED:
        return failed(order, refund, reason=reason or "unknown", actor=actor, now=now)
    if action is RefundAction.RETRY:
        return retried(order, refund, actor=actor, now=now)
    if action is RefundAction.APPROVE:
        return approve(order, refund, approver=actor, now=now)
    return reject(order, refund, actor=actor, reason=reason or "rejected", now=now)


_RESULT: dict[RefundAction, tuple[RefundStatus, ...]] = {
    RefundAction.SUBMITTED: (RefundStatus.CONFIRMING,),
    RefundAction.SUCCEEDED: (RefundStatus.SUCCEEDED,),
    RefundAction.FAILED: (RefundStatus.FAILED,),
    RefundAction.RETRY: (RefundStatus.REFUNDING,),
    RefundAction.APPROVE: (RefundStatus.REFUNDING, RefundStatus.AWAITING_MANUAL),
    RefundAction.REJECT: (RefundStatus.REJECTED,),
}


def done_already(refund: Refund, action: RefundAction, expect_attempt: int) -> bool:
    """A retried write whose first try committed finds its own result (the attempt it was meant for)."""
    attempt = expect_attempt + (1 if action is RefundAction.RETRY else 0)
    return refund.status in _RESULT[action] and refund.attempt == attempt


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
    """Every refund move of money passes here, so the order's refunded status follows its totals here."""
    cur = order.currency
    order = order.model_copy(
        update={
            "pending_refund_total": Money(amount=order.pending_refund_total.amount + pending, currency=cur),
            "refunded_total": Money(amount=order.refunded_total.amount + refunded, currency=cur),
        }
    )
    return _refund_status(order)


def _refund_status(order: Order) -> Order:
    """A paid order whose money is all back is `refunded`; money owed again (a late failure) makes it `paid`."""
    if order.status is OrderStatus.PAID and order.fully_refunded:
        target = OrderStatus.REFUNDED
    elif order.status is OrderStatus.REFUNDED and not order.fully_refunded:
        target = OrderStatus.PAID
    else:
        return order  # reserved, expired and cancelled orders keep their status whatever is refunded
    return order.model_copy(update={"status": transition(ORDER_TRANSITIONS, order.status, target, what="order")})


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
        return _refund_status(order), refund, events
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
    """A new attempt (new idempotency key) for a failed refund; money moves only if no earlier attempt paid."""
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
