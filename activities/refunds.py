"""Refund ledger activities on the `orders` queue.

Each one is one store transaction over the order and the refund, and each is
safe to run twice: a retry after a commit finds the work done and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from temporalio import activity

from activities.contracts import OpenRefund, RefundSnapshot, RefundTransition, SettleRefund
from activities.deps import Deps
from activities.errors import domain_errors
from ticketing import refund_ledger
from ticketing.errors import ActionNotAllowed
from ticketing.models import Order, Refund, RefundKind
from ticketing.money import Money
from ticketing.processors import CAPABILITIES
from ticketing.refunds import RefundRequest, needs_approval, quote_refund
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
            after, refund, history = refund_ledger.open_refund(
                order,
                quote,
                refund_id=req.refund_id,
                workflow_id=req.workflow_id,
                actor=req.actor,
                now=datetime.now(UTC),
                needs_approval=needs_approval(quote, event, req.approval_threshold),
            )
            await insert_refund(conn, refund)
            saved = await save_order(conn, order, after, history)
        return snapshot(refund, saved)

    @activity.defn(name="move_refund")
    @domain_errors
    async def move_refund(self, req: RefundTransition) -> RefundSnapshot:
        def move(order: Order, refund: Refund, now: datetime) -> refund_ledger.Change | None:
            if refund_ledger.done_already(refund, req.action, req.expect_attempt):
                return None
            _expect(refund, req.expect_attempt)
            return refund_ledger.apply(
                order,
                refund,
                req.action,
                actor=req.actor,
                now=now,
                processor_refund_id=req.processor_refund_id,
                reason=req.reason,
                reference=req.reference,
            )

        return await self._write(req.refund_id, move)

    @activity.defn(name="settle_refund")
    @domain_errors
    async def settle_refund(self, req: SettleRefund) -> RefundSnapshot:
        """The processor's answer, judged and written by the ledger's rule; a repeat finds nothing to do."""

        def move(order: Order, refund: Refund, now: datetime) -> refund_ledger.Change | None:
            _expect(refund, req.expect_attempt)
            change = refund_ledger.settle(order, refund, req.outcome, actor=req.actor, now=now)
            return change if change[2] else None

        return await self._write(req.refund_id, move)

    async def _write(
        self, refund_id: str, move: Callable[[Order, Refund, datetime], refund_ledger.Change | None]
    ) -> RefundSnapshot:
        """One ledger move under the order's lock; None from `move` means done already (a retry's commit)."""
        async with self.deps.store.transaction() as conn:
            refund = await load_refund(conn, refund_id)
            order = await load_order(conn, refund.order_code, for_update=True)
            change = move(order, refund, datetime.now(UTC))
            if change is None:
                return snapshot(refund, order)
            after_order, after_refund, history = change
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


def _expect(refund: Refund, attempt: int) -> None:
    if refund.attempt != attempt:
        raise ActionNotAllowed(
            f"refund {refund.id} is on attempt {refund.attempt}, not {attempt}", type="stale-refund-attempt"
        )
