"""Event cancellation, many orders per activity: notify, then cancel and refund at the processor's pace.

Per order, the cancellation and the refund's ledger row are one transaction;
the processor is then called with the refund's idempotency key (its workflow
id is `refund/{order}/{bulk}`), so a retried batch finds each order where it
left it and never refunds twice. Refunds that must wait (confirmation,
finance) are handed to a RefundWorkflow under that same id.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import structlog
from temporalio import activity

from activities.contracts import BatchCounts, BulkBatch
from activities.deps import Deps
from activities.errors import domain_errors
from activities.pacing import Pacer
from documents.email_templates import render_email
from email_providers.base import OutgoingEmail, PermanentEmailError
from payment_adapters.base import ProcessorRefund, ProcessorRejected, ProcessorUnavailable
from ticketing import refund_ledger
from ticketing.bulk import ItemStatus, RefundMode, RefundPlan
from ticketing.cancellation import CancelRequest, cancel_order
from ticketing.event_cancellation import fees_refundable, plan_refund
from ticketing.models import Order, OrderEvent, Refund
from ticketing.policies.actions import Refusal
from ticketing.states import OrderStatus, RefundStatus
from ticketing.store.bulk import items_in_range, load_bulk, mark_item
from ticketing.store.deliveries import DeliveryStatus, claim_delivery, mark_delivery
from ticketing.store.orders import adjust_inventory, load_event, load_order, save_order
from ticketing.store.refunds import find_refund_by_workflow, insert_refund, update_refund

log = structlog.get_logger(__name__)
MAX_PROCESSOR_TRIES = 8


def refund_workflow_id(order_code: str, bulk_id: str) -> str:
    return f"refund/{order_code}/{bulk_id}"


def refund_id_for(workflow_id: str) -> str:
    return "rf_" + hashlib.sha256(workflow_id.encode()).hexdigest()[:16]


class EventCancellationActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="notify_cancellation_batch")
    @domain_errors
    async def notify_cancellation_batch(self, batch: BulkBatch) -> BatchCounts:
        """Buyers hear of the cancellation before any refund starts."""
        store = self.deps.store
        async with store.transaction() as conn:
            bulk = await load_bulk(conn, batch.bulk_id)
            items = await items_in_range(conn, batch.bulk_id, batch.first, batch.last, {ItemStatus.PENDING})
            event = await load_event(conn, bulk.event_id)
        reason = str(bulk.params.get("reason", "the event was cancelled"))
        pacer = Pacer(batch.rate)
        counts: dict[str, int] = {}
        for done, item in enumerate(items):
            activity.heartbeat(done)
            async with store.transaction() as conn:
                order = await load_order(conn, item.key)
            note = None
            if order.contact.email:
                await pacer.wait()
                note = await self._notify(batch.bulk_id, order, event, reason)
            else:
                note = "no-contact-email"
            async with store.transaction() as conn:
                await mark_item(conn, item.id, ItemStatus.NOTIFIED, reason=note)
            counts["notified"] = counts.get("notified", 0) + 1
        return BatchCounts(counts=counts)

    async def _notify(self, bulk_id: str, order: Order, event: Any, reason: str) -> str | None:
        recipient = order.contact.email or ""
        mid = hashlib.sha256(f"cancel-notice|{bulk_id}|{order.code}".encode()).hexdigest()[:40] + "@ticketops"
        async with self.deps.store.transaction() as conn:
            prior = await claim_delivery(
                conn,
                message_id=mid,
                order_code=order.code,
                workflow_id=bulk_id,
                kind="event-cancellation",
                provider=self.deps.email.name,
            )
        if prior is DeliveryStatus.SENT:
            return None
        rendered = render_email(
            "cancellation",
            {
                "order_code": order.code,
                "event_name": event.name,
                "event_starts_at": event.starts_at,
                "buyer_name": order.contact.name,
                "reason": reason,
                "refund_total": None,
            },
        )
        email = OutgoingEmail(
            message_id=mid,
            sender=self.deps.settings.email.sender,
            to=[recipient],
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
        )
        try:
            await self.deps.email.send(email)
        except PermanentEmailError as err:
            async with self.deps.store.transaction() as conn:
                await mark_delivery(conn, mid, DeliveryStatus.FAILED, str(err))
            return f"notice-failed: {err}"[:500]
        async with self.deps.store.transaction() as conn:
            await mark_delivery(conn, mid, DeliveryStatus.SENT)
        return None

    @activity.defn(name="cancel_refund_batch")
    @domain_errors
    async def cancel_refund_batch(self, batch: BulkBatch) -> BatchCounts:
        store = self.deps.store
        async with store.transaction() as conn:
            bulk = await load_bulk(conn, batch.bulk_id)
            items = await items_in_range(
                conn, batch.bulk_id, batch.first, batch.last, {ItemStatus.PENDING, ItemStatus.NOTIFIED}
            )
        params: dict[str, Any] = dict(bulk.params)
        plan = RefundPlan.model_validate(params.get("refund") or {})
        reason = str(params.get("reason", "the event was cancelled"))
        actor = str(params.get("actor", "ticketops"))
        pacer = Pacer(batch.rate)
        counts: dict[str, int] = {}
        follow_ups: list[str] = []
        for done, item in enumerate(items):
            activity.heartbeat(done)
            status, why, refund = await self._cancel_one(batch.bulk_id, item.key, plan, reason, actor)
            if refund is not None and refund.status is RefundStatus.REFUNDING:
                refund = await self._submit(refund, pacer)
                status, why = _item_status(refund)
            if refund is not None and status in (
                ItemStatus.REFUND_PENDING,
                ItemStatus.MANUAL_PENDING,
                ItemStatus.REFUND_ERROR,
            ):
                follow_ups.append(f"{refund.id}|{refund.order_code}|{refund.workflow_id}")
            async with store.transaction() as conn:
                await mark_item(conn, item.id, status, reason=why, refund_id=refund.id if refund else None)
            counts[status.value] = counts.get(status.value, 0) + 1
        return BatchCounts(counts=counts, follow_ups=follow_ups)

    async def _cancel_one(
        self, bulk_id: str, code: str, plan: RefundPlan, reason: str, actor: str
    ) -> tuple[ItemStatus, str | None, Refund | None]:
        """Cancel the order and write its refund to the ledger, once; resumes where a crash left it."""
        workflow_id = refund_workflow_id(code, bulk_id)
        now = datetime.now(UTC)
        async with self.deps.store.transaction() as conn:
            existing = await find_refund_by_workflow(conn, workflow_id)
            if existing is not None:
                return (*_item_status(existing), existing)
            order = await load_order(conn, code, for_update=True)
            event = await load_event(conn, order.event_id)
            if order.status is OrderStatus.EXPIRED:
                return ItemStatus.SKIPPED, "order-expired", None
            if order.status is not OrderStatus.CANCELLED:
                done = cancel_order(
                    order, event, CancelRequest(reason=reason), actor=actor, now=now, operation_id=f"{bulk_id}/{code}"
                )
                for delta in done.inventory:
                    await adjust_inventory(conn, delta.ticket_type_id, delta.time_slot_id, delta.delta)
                order = await save_order(conn, order, done.order, done.history)
            if order.payment.status.value != "succeeded":
                return ItemStatus.CANCELLED, "nothing was paid", None
            history: list[OrderEvent] = []
            if plan.mode is RefundMode.FULL:
                before = order
                order, history = fees_refundable(order, actor=actor, now=now, bulk_id=bulk_id)
                if history:
                    order = await save_order(conn, before, order, history)
            quote = plan_refund(order, event, plan, reason)
            if isinstance(quote, Refusal):
                return ItemStatus.CANCELLED, quote.type, None
            after, refund, events = refund_ledger.open_refund(
                order,
                quote,
                refund_id=refund_id_for(workflow_id),
                workflow_id=workflow_id,
                actor=actor,
                now=now,
                needs_approval=False,
            )
            await insert_refund(conn, refund)
            await save_order(conn, order, after, events)
        return (*_item_status(refund), refund)

    async def _submit(self, refund: Refund, pacer: Pacer) -> Refund:
        """Call the processor at this batch's pace; back off on 429; the key makes repeats harmless."""
        adapter = self.deps.payments[refund.processor]
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, refund.order_code)
        if activity.info().attempt > 1:  # a retried batch: adopt what the processor may have made already
            earlier = await adapter.find_refund(
                payment_reference=order.payment.reference or "", idempotency_key=refund.idempotency_key
            )
            if earlier is not None:
                return await self._settle(refund, earlier)
        for attempt in range(MAX_PROCESSOR_TRIES):
            await pacer.wait()
            try:
                result = await adapter.create_refund(
                    payment_reference=order.payment.reference or "",
                    amount=refund.amount,
                    idempotency_key=refund.idempotency_key,
                    metadata={
                        "refund_id": refund.id,
                        "order_code": refund.order_code,
                        "workflow_id": refund.workflow_id,
                    },
                )
                break
            except ProcessorUnavailable as err:
                pacer.back_off(min(8.0, 0.5 * 2**attempt))
                log.info("event_cancellation.processor_busy", status=err.status, attempt=attempt)
            except ProcessorRejected as err:
                return await self._move(refund, "failed", reason=f"{err.code}: {err.message}")
        else:
            raise ProcessorUnavailable("the processor kept refusing; the batch will be retried")
        return await self._settle(refund, result)

    async def _settle(self, refund: Refund, result: ProcessorRefund) -> Refund:
        if result.status == "succeeded":
            return await self._move(refund, "succeeded", processor_refund_id=result.id)
        if result.status in ("failed", "canceled"):
            return await self._move(refund, "failed", reason=result.failure_reason or result.status)
        return await self._move(refund, "submitted", processor_refund_id=result.id)

    async def _move(self, refund: Refund, action: str, **kw: Any) -> Refund:
        now = datetime.now(UTC)
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, refund.order_code, for_update=True)
            if action == "succeeded":
                change = refund_ledger.succeeded(order, refund, actor="ticketops", now=now, **kw)
            elif action == "failed":
                change = refund_ledger.failed(order, refund, actor="processor", now=now, **kw)
            else:
                change = refund_ledger.submitted(order, refund, actor="ticketops", now=now, **kw)
            after_order, after_refund, history = change
            await update_refund(conn, refund, after_refund)
            await save_order(conn, order, after_order, history)
        return after_refund


def _item_status(refund: Refund) -> tuple[ItemStatus, str | None]:
    return {
        RefundStatus.SUCCEEDED: (ItemStatus.REFUNDED, None),
        RefundStatus.FAILED: (ItemStatus.REFUND_ERROR, refund.failure_reason),
        RefundStatus.AWAITING_MANUAL: (ItemStatus.MANUAL_PENDING, "finance pays out by hand"),
        RefundStatus.CONFIRMING: (ItemStatus.REFUND_PENDING, "waiting for the processor to confirm"),
        RefundStatus.REFUNDING: (ItemStatus.REFUND_PENDING, "sending to the processor"),
    }.get(refund.status, (ItemStatus.REFUND_ERROR, refund.status.value))
