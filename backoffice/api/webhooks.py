"""Stripe webhooks: verify, drop what was seen, re-fetch, then tell the refund's or reservation's workflow.

The event id is recorded as seen only after it was handled, so a webhook that
failed half-way is redelivered by Stripe rather than lost. The refund is
re-fetched from Stripe, so a replayed or stale event cannot move a refund.
A `payment_intent.succeeded` whose intent (re-fetched) carries `metadata.order_code` pays that
order's `Reservation` by the same update finance's mark-paid uses, as a Stripe payment; a payment
the reservation cannot take (expired, paid already, another amount, its event or time slot called
off: `event-cancelled`, `time-slot-cancelled`) is not retried: it opens a
`payment-unapplied` reconciliation item for finance, once per payment id.
The API reaches the payment adapter directly here, for verification and re-fetching only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, Depends, Request
from sqlalchemy.exc import IntegrityError

from backoffice.api.deps import AppState, state
from backoffice.api.problems import ProblemError
from backoffice.api.reservations import reservation_id
from payment_adapters.base import ProcessorPayment, WebhookRejected
from ticketing.errors import DomainError
from ticketing.models import Order, Processor
from ticketing.processor_news import NewsRoute, route_news
from ticketing.reconciliation.unapplied import SOURCE as UNAPPLIED_SOURCE
from ticketing.reconciliation.unapplied import unapplied_payment
from ticketing.refunds import late_answer_workflow_id, late_failure_workflow_id, refund_summary
from ticketing.reservations import check_processor_payment, paid_by
from ticketing.store.orders import load_event, load_order
from ticketing.store.reconciliation import record_finding_once
from ticketing.store.refunds import find_refund_by_processor_id
from ticketing.store.tables import webhook_events
from workflows.contracts import NewsReceipt, ProcessorUpdate, RefundInput, ReservationPayment
from workflows.refund import RefundWorkflow
from workflows.reservation import ReservationWorkflow

router = APIRouter(tags=["webhooks"])
log = structlog.get_logger(__name__)


@router.post("/webhooks/stripe")
async def stripe_webhook(request: Request, st: Annotated[AppState, Depends(state)]) -> dict[str, str]:
    adapter = st.payments.get(Processor.STRIPE)
    if adapter is None:
        raise ProblemError(503, "processor-not-configured", "Stripe is not configured")
    payload = await request.body()
    try:
        event = adapter.parse_webhook(payload, request.headers.get("Stripe-Signature"))
    except WebhookRejected as err:
        log.warning("webhook.rejected", code=err.code)
        raise ProblemError(400, "webhook-signature-invalid", err.message) from err
    async with st.store.transaction() as conn:
        seen = (await conn.execute(sa.select(webhook_events.c.id).where(webhook_events.c.id == event.id))).first()
    if seen:
        return {"status": "duplicate"}
    outcome = "ignored"
    if event.refund is not None:
        outcome = await _handle_refund(st, adapter, event.refund.id, event.id)
    elif event.payment is not None and event.type == "payment_intent.succeeded":
        outcome = await _handle_payment(st, adapter, event.payment.id)
    try:
        async with st.store.transaction() as conn:
            await conn.execute(
                webhook_events.insert().values(
                    id=event.id, source="stripe", type=event.type, received_at=datetime.now(UTC)
                )
            )
    except IntegrityError:
        return {"status": "duplicate"}
    return {"status": outcome}


async def _handle_payment(st: AppState, adapter: object, payment_id: str) -> str:
    """Pay the reserved order the intent names; any other intent (a card order's own) is not ours to act on.

    A payment the order cannot take is money received and not applied: it becomes finance's
    reconciliation item (once per payment id), and the webhook is answered so Stripe does not retry.
    """
    fresh: ProcessorPayment = await adapter.get_payment(payment_id)  # type: ignore[attr-defined]
    code = fresh.metadata.get("order_code")
    if fresh.status != "succeeded" or not code:
        return "ignored"
    code = code.upper()
    order: Order | None = None
    try:
        async with st.store.transaction() as conn:
            order = await load_order(conn, code)
            event = await load_event(conn, order.event_id)
        if paid_by(order, Processor.STRIPE, fresh.id):
            return "paid"  # redelivered after it took
        check_processor_payment(order, event, fresh.amount)
    except DomainError as err:
        return await _unapplied(st, code, fresh, err.type, err.detail, order)
    done = await st.operations.offer(
        reservation_id(order.code), ReservationWorkflow.pay,
        ReservationPayment(actor="processor", reference=fresh.id, processor=Processor.STRIPE),
    )
    if done is not None:
        return "paid"
    # Expired, settled or called off in the meantime, or no reservation runs for it; unless this payment took.
    async with st.store.transaction() as conn:
        order = await load_order(conn, code)
        event = await load_event(conn, order.event_id)
    if paid_by(order, Processor.STRIPE, fresh.id):
        return "paid"
    try:
        check_processor_payment(order, event, fresh.amount)
    except DomainError as err:  # the reason the reservation refused it, when the store tells
        return await _unapplied(st, code, fresh, err.type, err.detail, order)
    return await _unapplied(st, code, fresh, "reservation-closed", "no open reservation took the payment", order)


async def _unapplied(
    st: AppState, code: str, payment: ProcessorPayment, reason_type: str, reason: str, order: Order | None
) -> str:
    finding = unapplied_payment(
        order_code=code, payment_id=payment.id, received=payment.amount, reason_type=reason_type, reason=reason,
        order_status=order.status.value if order else None, order_amount=order.payment.amount if order else None,
    )
    async with st.store.transaction() as conn:
        item, new = await record_finding_once(
            conn, processor=Processor.STRIPE.value, source=UNAPPLIED_SOURCE, finding=finding, now=datetime.now(UTC)
        )
    log.warning("webhook.payment_not_applied", order=code, payment=payment.id, reason=reason_type, item=item,
                new_item=new)
    return reason_type


async def _handle_refund(st: AppState, adapter: object, processor_refund_id: str, event_id: str) -> str:
    fresh = await adapter.get_refund(processor_refund_id)  # type: ignore[attr-defined]
    update = ProcessorUpdate(
        processor_refund_id=fresh.id, status=fresh.status, failure_reason=fresh.failure_reason
    )
    workflow_id = fresh.metadata.get("workflow_id")
    # Taken: the run acts on it before it ends. Otherwise (ended, ending, not started) the ledger decides below.
    if workflow_id:
        receipt = await st.operations.offer(workflow_id, RefundWorkflow.processor_news, update)
        if receipt is NewsReceipt.TAKEN:
            return "signalled"
    async with st.store.transaction() as conn:
        ledger = await find_refund_by_processor_id(conn, fresh.id)
    if ledger is None:
        return "unknown-refund"
    # The signal above found no open run; reconciliation's replay of a missed event routes the same way.
    route = route_news(ledger, update, run_open=False)
    if route is NewsRoute.START_RUN_WITH_NEWS:
        # A refund handed over by a bulk run whose follow-up has not started yet: start it with the news.
        await st.operations.start(
            RefundWorkflow.run,
            RefundInput(
                order_code=ledger.order_code, actor="processor", refund_id=ledger.id, existing_refund_id=ledger.id,
                timing=st.settings.refunds.timing(),
            ),
            operation_id=ledger.workflow_id,
            summary=refund_summary(
                ledger.amount, ledger.order_code, len(ledger.ticket_ids), ledger.kind.value,
                then="handed over by event cancellation",
            ),
            start_signal=("processor_update", update),
        )
        return "signalled-with-start"
    if route is NewsRoute.START_LATE_FAILURE:
        # Stripe failed a refund after it had succeeded; the original workflow is done.
        # Several events report one failure; the follow-up id collapses them into one run.
        follow_up = late_failure_workflow_id(ledger.id, ledger.attempt)
        await st.operations.start(
            RefundWorkflow.run,
            RefundInput(
                order_code=ledger.order_code,
                actor="processor",
                refund_id=ledger.id,
                existing_refund_id=ledger.id,
                late_failure_reason=fresh.failure_reason or fresh.status,
            ),
            operation_id=follow_up,
            # The original run is closed and cannot change: this run names it, and its RefundStatus
            # search attribute puts the reopened refund in finance's refund-error list.
            summary=refund_summary(
                ledger.amount, ledger.order_code, len(ledger.ticket_ids), ledger.kind.value,
                then=f"{fresh.status} after it succeeded; reopens {ledger.workflow_id}",
            ),
        )
        return "late-failure"
    if route is NewsRoute.START_LATE_ANSWER:
        # A refund-error whose own processor refund ended after its run closed: the follow-up settles it
        # (paid: refunded and the receipt). Its id collapses repeated events into one run per attempt.
        await st.operations.start(
            RefundWorkflow.run,
            RefundInput(
                order_code=ledger.order_code, actor="processor", refund_id=ledger.id, existing_refund_id=ledger.id,
                late_news=update, timing=st.settings.refunds.timing(),
            ),
            operation_id=late_answer_workflow_id(ledger.id, ledger.attempt),
            summary=refund_summary(
                ledger.amount, ledger.order_code, len(ledger.ticket_ids), ledger.kind.value,
                then=f"{fresh.status} after refund-error; settles {ledger.workflow_id}",
            ),
        )
        return "late-answer"
    return "no-change"
