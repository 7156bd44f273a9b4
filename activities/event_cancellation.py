"""Event cancellation, many orders per activity: notify, then cancel and refund at the processor's pace.

Per order, the cancellation and the refund's ledger row are one transaction;
the processor is then called with the refund's idempotency key (its workflow
id is `refund/{order}/{bulk}`), so a retried batch finds each order where it
left it and never refunds twice. Refunds that must wait (confirmation,
finance) are handed to a RefundWorkflow under that same id.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio import activity

from activities.contracts import BatchCounts, BulkBatch, FollowUp
from activities.deps import Deps
from activities.errors import domain_errors
from activities.pacing import Pacer
from documents.email_templates import render_email
from email_providers.base import OutgoingEmail, PermanentEmailError
from payment_adapters.base import ProcessorRefund, ProcessorRejected, ProcessorUnavailable
from payment_adapters.lookup import earlier_refund
from ticketing import refund_ledger
from ticketing.bulk import ItemStatus, RefundMode, RefundPlan
from ticketing.cancellation import CancelRequest, cancel_order
from ticketing.errors import ConcurrentModification, DomainError
from ticketing.event_cancellation import fees_refundable, plan_refund
from ticketing.inventory import InventoryDelta
from ticketing.models import Event, Order, OrderEvent, Refund
from ticketing.policies.actions import Refusal
from ticketing.reconciliation_records import ProcessorRefundStatus
from ticketing.refund_ledger import ProcessorOutcome, RefundAction
from ticketing.refunds import refund_summary
from ticketing.states import OrderStatus, RefundStatus
from ticketing.store.bulk import items_in_range, load_bulk, mark_item
from ticketing.store.deliveries import DeliveryStatus, claim_delivery, mark_delivery
from ticketing.store.orders import adjust_inventory, load_event, load_order, load_orders, save_order
from ticketing.store.refunds import (
    find_refund_by_workflow,
    find_refunds_by_workflows,
    insert_refund,
    load_refund,
    refund_items_in_range,
    update_refund,
)

log = structlog.get_logger(__name__)
MAX_PROCESSOR_TRIES = 8
IN_FLIGHT_SECONDS = 1.0  # the latency (store, processor, store) in flight covers; 0.3 s fell short on a busy machine
MAX_IN_FLIGHT = 10
FOLLOW_UP = (ItemStatus.REFUND_PENDING, ItemStatus.MANUAL_PENDING, ItemStatus.REFUND_ERROR)
_T = TypeVar("_T")
# A ledger move by the refund rule: (order, refund, now) -> the change to write.
_Move = Callable[[Order, Refund, datetime], refund_ledger.Change]


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
        """Cancel and refund the range's orders, several in flight at once, at this batch's share of the rate.

        The batch's orders, refunds and event are read in one transaction; per order there are then
        two: the cancellation with its ledger row, and the processor's answer with the item's mark.
        An order that moved since the read is read again under its lock.
        """
        store = self.deps.store
        async with store.transaction() as conn:
            bulk = await load_bulk(conn, batch.bulk_id)
            items = await items_in_range(
                conn, batch.bulk_id, batch.first, batch.last, {ItemStatus.PENDING, ItemStatus.NOTIFIED}
            )
            codes = [item.key for item in items]
            orders = {order.code: order for order in await load_orders(conn, codes)}
            ledger = await find_refunds_by_workflows(conn, [refund_workflow_id(c, batch.bulk_id) for c in codes])
            events = {e: await load_event(conn, e) for e in sorted({o.event_id for o in orders.values()})}
        params: dict[str, Any] = dict(bulk.params)
        job = _Job(
            bulk_id=batch.bulk_id,
            plan=RefundPlan.model_validate(params.get("refund") or {}),
            reason=str(params.get("reason", "the event was cancelled")),
            actor=str(params.get("actor", "ticketops")),
            orders=orders,
            ledger=ledger,
            events=events,
            pacer=Pacer(batch.rate),
        )
        counts: dict[str, int] = {}
        pending = iter(items)
        failure: list[Exception] = []

        async def work() -> None:
            for item in pending:
                if failure:
                    return
                try:
                    status = await self._one(job, item)
                except Exception as err:  # the others finish the order they hold; then the batch fails
                    failure.append(err)
                    return
                counts[status.value] = counts.get(status.value, 0) + 1
                activity.heartbeat(sum(counts.values()))

        await asyncio.gather(*(work() for _ in range(in_flight(batch.rate))))
        if failure:
            raise failure[0]
        # Read back rather than collected: an earlier attempt that died after marking its items
        # never returned their follow-ups, and the parent ignores a run that exists already.
        async with store.transaction() as conn:
            waiting = await refund_items_in_range(conn, batch.bulk_id, batch.first, batch.last, set(FOLLOW_UP))
        then = f"handed over by event cancellation {batch.bulk_id}"
        follow_ups = [
            FollowUp(
                refund_id=refund_id,
                order_code=code,
                workflow_id=workflow_id,
                summary=refund_summary(amount, code, tickets, kind, then=then),
            )
            for refund_id, code, workflow_id, amount, tickets, kind in waiting
        ]
        return BatchCounts(counts=counts, follow_ups=follow_ups)

    async def _one(self, job: _Job, item: Any) -> ItemStatus:
        opened = await self._open(job, item)
        refund = opened.refund
        if refund is None or refund.status is not RefundStatus.REFUNDING:
            return opened.status
        return _item_status(await self._submit(job, item, opened))[0]

    async def _open(self, job: _Job, item: Any) -> _Opened:
        """Cancel the order and write its refund to the ledger, once; resumes where a crash left it.

        One transaction: the cancellation, the refund's ledger row and, when nothing is left to do,
        the item's mark. It starts from the batch's read of the order; the order's version guards
        that read, and a moved order is read again under its lock.
        """
        code = item.key
        workflow_id = refund_workflow_id(code, job.bulk_id)
        order = job.orders.get(code)
        if order is not None:
            try:
                return await self._open_from(job, item, order, job.ledger.get(workflow_id), fresh=False)
            except ConcurrentModification:
                log.info("event_cancellation.order_moved", order_code=code)
        return await self._open_from(job, item, None, None, fresh=True)

    async def _open_from(
        self, job: _Job, item: Any, order: Order | None, existing: Refund | None, *, fresh: bool
    ) -> _Opened:
        code = item.key
        workflow_id = refund_workflow_id(code, job.bulk_id)
        now = datetime.now(UTC)
        async with self.deps.store.transaction() as conn:
            if fresh:
                existing = await find_refund_by_workflow(conn, workflow_id)
                order = None if existing is not None else await load_order(conn, code, for_update=True)
            if existing is not None:
                status, why = _item_status(existing)
                if existing.status is not RefundStatus.REFUNDING:
                    await mark_item(conn, item.id, status, reason=why, refund_id=existing.id)
                return _Opened(status, existing, None if fresh else order, existed=True)
            assert order is not None
            event = job.events.get(order.event_id) or await load_event(conn, order.event_id)
            try:
                plan = _plan_order(
                    order, event, job, now=now, refund_id=refund_id_for(workflow_id), workflow_id=workflow_id
                )
            except ConcurrentModification:
                raise
            except DomainError as err:  # this order cannot be cancelled as it stands: reported, the rest go on
                reason = f"{err.type}: {err}"[:500]
                await mark_item(conn, item.id, ItemStatus.FAILED, reason=reason)
                log.warning("event_cancellation.order_refused", order_code=code, type=err.type)
                return _Opened(ItemStatus.FAILED, None, order, existed=False)
            saved = order
            if plan.history or plan.order != order:
                # The order row first: its version check (and, on PostgreSQL, its row lock) come before the rest.
                saved = await save_order(conn, order, plan.order, plan.history)
            for delta in plan.inventory:
                await adjust_inventory(conn, delta.ticket_type_id, delta.time_slot_id, delta.delta)
            if plan.refund is not None:
                await insert_refund(conn, plan.refund)
            if plan.refund is None or plan.refund.status is not RefundStatus.REFUNDING:
                await mark_item(
                    conn, item.id, plan.status, reason=plan.why, refund_id=plan.refund.id if plan.refund else None
                )
        return _Opened(plan.status, plan.refund, saved, existed=False)

    async def _submit(self, job: _Job, item: Any, opened: _Opened) -> Refund:
        """Call the processor at this batch's pace; back off on 429; the key makes repeats harmless."""
        refund = opened.refund
        assert refund is not None
        adapter = self.deps.payments[refund.processor]
        reference = await self._payment_reference(opened)
        if opened.existed:  # opened by an earlier attempt, which may have reached the processor
            earlier = await self._paced(
                job.pacer,
                lambda: earlier_refund(
                    adapter, payment_reference=reference, refund_id=refund.id, idempotency_key=refund.idempotency_key
                ),
            )
            if earlier is not None:
                return await self._settle(item, opened, earlier)
        try:
            result = await self._paced(
                job.pacer,
                lambda: adapter.create_refund(
                    payment_reference=reference,
                    amount=refund.amount,
                    idempotency_key=refund.idempotency_key,
                    metadata={
                        "refund_id": refund.id,
                        "order_code": refund.order_code,
                        "workflow_id": refund.workflow_id,
                    },
                ),
            )
        except ProcessorRejected as err:
            why = f"{err.code}: {err.message}"

            def refused(order: Order, refund: Refund, now: datetime) -> refund_ledger.Change:
                return refund_ledger.apply(order, refund, RefundAction.FAILED, actor="processor", now=now, reason=why)

            return await self._move(item, opened, refused)
        return await self._settle(item, opened, result)

    async def _payment_reference(self, opened: _Opened) -> str:
        if opened.order is not None:
            return opened.order.payment.reference or ""
        assert opened.refund is not None
        async with self.deps.store.transaction() as conn:
            return (await load_order(conn, opened.refund.order_code)).payment.reference or ""

    @staticmethod
    async def _paced(pacer: Pacer, call: Callable[[], Awaitable[_T]]) -> _T:
        for attempt in range(MAX_PROCESSOR_TRIES):
            await pacer.wait()
            try:
                return await call()
            except ProcessorUnavailable as err:
                pacer.back_off(min(8.0, 0.5 * 2**attempt))
                log.info("event_cancellation.processor_busy", status=err.status, attempt=attempt)
        raise ProcessorUnavailable("the processor kept refusing; the batch will be retried")

    async def _settle(self, item: Any, opened: _Opened, result: ProcessorRefund) -> Refund:
        outcome = ProcessorOutcome(
            processor_refund_id=result.id,
            status=ProcessorRefundStatus(result.status),
            failure_reason=result.failure_reason,
        )
        return await self._move(
            item, opened, lambda o, r, now: refund_ledger.settle(o, r, outcome, actor="ticketops", now=now)
        )

    async def _move(self, item: Any, opened: _Opened, move: _Move) -> Refund:
        """The processor's answer in the ledger, and the item's mark, in one transaction."""
        refund = opened.refund
        assert refund is not None
        if opened.order is not None:
            try:
                async with self.deps.store.transaction() as conn:
                    return await _write_move(conn, item, opened.order, refund, move)
            except ConcurrentModification:
                log.info("event_cancellation.order_moved", order_code=refund.order_code)
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, refund.order_code, for_update=True)
            current = await load_refund(conn, refund.id)
            if current.status is not refund.status or current.attempt != refund.attempt:
                # Moved by someone else meanwhile (the processor's webhook): theirs is the newer word.
                status, why = _item_status(current)
                await mark_item(conn, item.id, status, reason=why, refund_id=current.id)
                return current
            return await _write_move(conn, item, order, refund, move)


@dataclass
class _Job:
    """What every order of one batch shares: the plan, and what the batch read up front."""

    bulk_id: str
    plan: RefundPlan
    reason: str
    actor: str
    orders: dict[str, Order]
    ledger: dict[str, Refund]
    events: dict[str, Event]
    pacer: Pacer


@dataclass
class _Opened:
    status: ItemStatus
    refund: Refund | None
    order: Order | None  # as written (its version known), or None when it must be read again
    existed: bool  # the refund was in the ledger before this attempt: it may have reached the processor


@dataclass
class _Plan:
    status: ItemStatus
    why: str | None
    order: Order
    history: list[OrderEvent]
    inventory: list[InventoryDelta]
    refund: Refund | None = None


def in_flight(rate: float) -> int:
    """Orders a batch works on at once: enough to cover IN_FLIGHT_SECONDS of latency at its pace."""
    if rate <= 0:
        return MAX_IN_FLIGHT
    return max(2, min(MAX_IN_FLIGHT, math.ceil(rate * IN_FLIGHT_SECONDS) + 1))


def _plan_order(order: Order, event: Event, job: _Job, *, now: datetime, refund_id: str, workflow_id: str) -> _Plan:
    """The cancellation, the fees made refundable and the refund's ledger row, as one change to the order."""
    if order.status is OrderStatus.EXPIRED:
        return _Plan(ItemStatus.SKIPPED, "order-expired", order, [], [])
    after, history, inventory = order, [], []
    if order.status is not OrderStatus.CANCELLED:
        done = cancel_order(
            order,
            event,
            CancelRequest(reason=job.reason),
            actor=job.actor,
            now=now,
            operation_id=f"{job.bulk_id}/{order.code}",
        )
        after, history, inventory = done.order, list(done.history), list(done.inventory)
    if after.payment.status.value != "succeeded":
        return _Plan(ItemStatus.CANCELLED, "nothing was paid", after, history, inventory)
    if job.plan.mode is RefundMode.FULL:
        after, fees = fees_refundable(after, actor=job.actor, now=now, bulk_id=job.bulk_id)
        history += fees
    quote = plan_refund(after, event, job.plan, job.reason)
    if isinstance(quote, Refusal):
        return _Plan(ItemStatus.CANCELLED, quote.type, after, history, inventory)
    after, refund, opened = refund_ledger.open_refund(
        after,
        quote,
        refund_id=refund_id,
        workflow_id=workflow_id,
        actor=job.actor,
        now=now,
        needs_approval=False,
    )
    status, why = _item_status(refund)
    return _Plan(status, why, after, history + opened, inventory, refund)


async def _write_move(conn: AsyncConnection, item: Any, order: Order, refund: Refund, move: _Move) -> Refund:
    after_order, after_refund, history = move(order, refund, datetime.now(UTC))
    if not history:  # nothing to write (the ledger's rule saw no change); the item is marked as it stands
        status, why = _item_status(refund)
        await mark_item(conn, item.id, status, reason=why, refund_id=refund.id)
        return refund
    await save_order(conn, order, after_order, history)  # the order's row (and lock) first
    await update_refund(conn, refund, after_refund)
    status, why = _item_status(after_refund)
    await mark_item(conn, item.id, status, reason=why, refund_id=after_refund.id)
    return after_refund


def _item_status(refund: Refund) -> tuple[ItemStatus, str | None]:
    return {
        RefundStatus.SUCCEEDED: (ItemStatus.REFUNDED, None),
        RefundStatus.FAILED: (ItemStatus.REFUND_ERROR, refund.failure_reason),
        RefundStatus.AWAITING_MANUAL: (ItemStatus.MANUAL_PENDING, "finance pays out by hand"),
        RefundStatus.CONFIRMING: (ItemStatus.REFUND_PENDING, "waiting for the processor to confirm"),
        RefundStatus.REFUNDING: (ItemStatus.REFUND_PENDING, "sending to the processor"),
    }.get(refund.status, (ItemStatus.REFUND_ERROR, refund.status.value))
