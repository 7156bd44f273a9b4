"""Stripe webhooks: verify, drop what was seen, re-fetch, then tell the refund's workflow.

The event id is recorded as seen only after it was handled, so a webhook that
failed half-way is redelivered by Stripe rather than lost. The refund is
re-fetched from Stripe, so a replayed or stale event cannot move a refund.
The API reaches the payment adapter directly here, for verification only.
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
from payment_adapters.base import WebhookRejected
from ticketing.models import Processor
from ticketing.processor_news import NewsRoute, route_news
from ticketing.refunds import late_failure_workflow_id, refund_summary
from ticketing.store.refunds import find_refund_by_processor_id
from ticketing.store.tables import webhook_events
from workflows.contracts import NewsReceipt, ProcessorUpdate, RefundInput
from workflows.refund import RefundWorkflow

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
    return "no-change"
