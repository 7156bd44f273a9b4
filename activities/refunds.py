"""Refund ledger activities on the `orders` queue.

Each one is one store transaction over the order and the refund, and each is
safe to run twice: a retry after a commit finds the work done and says so.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.contracts import OpenRefund, RefundSnapshot, RefundTransition
from activities.deps import Deps
from activities.errors import domain_errors
from ticketing import refund_ledger
from ticketing.errors import ActionNotAllowed
from ticketing.models import Order, Refund, RefundKind
from ticketing.money import Money
from ticketing.processors import CAPABILITIES
from ticketing.refunds import RefundRequest, quote_refund
from ticketing.states import RefundStatus
from ticketing.store.orders import load_event, load_order, save_order
from ticketing.store.refunds import (
    find_refund_by_workflow,
    insert_refund,
    load_refund,
    update_refund,
)


def snapshot(refund: Refund, order: Order) -> RefundSnapshot:
    return RefundSnapshot(
        refund_id=refund.id,
        order_code=order.code,
        event_id=order.event_id,
        status=refund.status.value,
        processor=refund.processor.value,
        amount=refund.amount.amount,
        currency=refund.amount.currency,
        ticket_count=len(refund.ticket_ids),
        attempt=refund.attempt,
        idempotency_key=refund.idempotency_key,
        payment_reference=order.payment.reference,
        processor_refund_id=refund.processor_refund_id,
        failure_reason=refund.failure_reason,
        paid_manually=refund.manual_reference is not None,
    )


class RefundActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="open_refund")
    @domain_errors
    async def open_refund(self, req: OpenRefund) -> RefundSnapshot:
        """Quote again under the order's lock; only the exact previewed refund is written."""
        async with self.deps.store.transaction() as conn:
            existing = await find_refund_by_workflow(conn, req.workflow_id)
            order = await load_order(conn, req.order_code, for_update=True)
            if existing is not None:
                return snapshot(existing, order)
            event = await load_event(conn, order.event_id)
            request = RefundRequest(
                kind=RefundKind(req.kind),
                reason=req.reason,
                ticket_ids=req.ticket_ids,
                amount=Money(amount=req.amount, currency=req.currency or order.currency)
                if req.amount is not None
                else None,
            )
            quote = quote_refund(order, event, request, CAPABILITIES[order.payment.processor])
            if quote.quote_hash != req.quote_hash:
                raise ActionNotAllowed(
                    "the order changed since the refund was previewed; preview it again",
                    type="quote-mismatch",
                )
            threshold = req.approval_threshold
            if event.policy.refund_approval_threshold is not None:
                threshold = event.policy.refund_approval_threshold
            after, refund, history = refund_ledger.open_refund(
                order,
                quote,
                refund_id=req.refund_id,
                workflow_id=req.workflow_id,
                actor=req.actor,
                now=datetime.now(UTC),
                needs_approval=threshold is not None and quote.amount.amount > threshold,
            )
            await insert_refund(conn, refund)
            saved = await save_order(conn, order, after, history)
        return snapshot(refund, saved)

    @activity.defn(name="move_refund")
    @domain_errors
    async def move_refund(self, req: RefundTransition) -> RefundSnapshot:
        now = datetime.now(UTC)
        async with self.deps.store.transaction() as conn:
            refund = await load_refund(conn, req.refund_id)
            order = await load_order(conn, refund.order_code, for_update=True)
            if _done_already(refund, req):
                return snapshot(refund, order)
            if refund.attempt != req.expect_attempt:
                raise ActionNotAllowed(
                    f"refund {refund.id} is on attempt {refund.attempt}, not {req.expect_attempt}",
                    type="stale-refund-attempt",
                )
            after_order, after_refund, history = _apply(order, refund, req, now)
            await update_refund(conn, refund, after_refund)
            saved = await save_order(conn, order, after_order, history)
        return snapshot(after_refund, saved)

    @activity.defn(name="get_refund_snapshot")
    @domain_errors
    async def get_refund_snapshot(self, refund_id: str) -> RefundSnapshot:
        async with self.deps.store.transaction() as conn:
            refund = await load_refund(conn, refund_id)
            order = await load_order(conn, refund.order_code)
        return snapshot(refund, order)


_RESULT = {
    "submitted": (RefundStatus.CONFIRMING,),
    "succeeded": (RefundStatus.SUCCEEDED,),
    "failed": (RefundStatus.FAILED,),
    "retry": (RefundStatus.REFUNDING,),
    "approve": (RefundStatus.REFUNDING, RefundStatus.AWAITING_MANUAL),
    "reject": (RefundStatus.REJECTED,),
}


def _done_already(refund: Refund, req: RefundTransition) -> bool:
    """A retried activity whose first run committed finds its own result."""
    if req.action not in _RESULT:
        raise ActionNotAllowed(f"unknown refund action {req.action}", type="invalid-refund-action")
    attempt = req.expect_attempt + (1 if req.action == "retry" else 0)
    return refund.status in _RESULT[req.action] and refund.attempt == attempt


def _apply(order: Order, refund: Refund, req: RefundTransition, now: datetime) -> refund_ledger.Change:
    if req.action == "submitted":
        return refund_ledger.submitted(
            order, refund, processor_refund_id=req.processor_refund_id or "", actor=req.actor, now=now
        )
    if req.action == "succeeded":
        return refund_ledger.succeeded(
            order, refund, actor=req.actor, now=now,
            processor_refund_id=req.processor_refund_id, reference=req.reference,
        )
    if req.action == "failed":
        return refund_ledger.failed(order, refund, reason=req.reason or "unknown", actor=req.actor, now=now)
    if req.action == "retry":
        return refund_ledger.retried(order, refund, actor=req.actor, now=now)
    if req.action == "approve":
        return refund_ledger.approve(order, refund, approver=req.actor, now=now)
    return refund_ledger.reject(order, refund, actor=req.actor, reason=req.reason or "rejected", now=now)
