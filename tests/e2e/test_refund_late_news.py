"""A processor failure after success is never lost, wherever the refund's run is when it arrives.

Issue 11's lost refund: the failure webhook came while the Refund run was sending the receipt (a slow
SMTP relay), the run buffered it and returned, and the webhook answered "signalled", so no one
acted. Now the webhook hands the news over by update: a run that takes it acts on it before it ends;
a run that has ended refuses it, and the webhook starts the late-failure run itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.client import Client

from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from runtime.settings import RefundConfig
from tests.e2e.refund_support import card_order, request_refund, stripe_refunds_for
from tests.harness import Harness, running
from ticketing.refunds import late_failure_workflow_id
from ticketing.states import TicketState
from ticketing.store.engine import Store
from ticketing.store.orders import load_order

FAST = RefundConfig(poll_initial_seconds=0.5, poll_max_seconds=1.0)
BUYER = "ada@example.com"
FINANCE = "finance@ticketops.local"


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    async with StripeServer(StripeServerConfig()) as server:
        yield server


@pytest_asyncio.fixture
async def app(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> AsyncIterator[Harness]:
    async with running(
        temporal_client, store, tmp_path, queue_prefix, stripe=stripe, webhooks=True,
        settings_overrides={"refunds": FAST},
    ) as harness:
        yield harness


async def _refund(app: Harness, url: str, status: str, *, waiting: bool = False) -> dict[str, Any]:
    for _ in range(300):
        refund: dict[str, Any] = (await app.http.get(url)).json()
        if refund["status"] == status and (refund["waiting_for"] or not waiting):
            return refund
        await asyncio.sleep(0.1)
    raise AssertionError(f"the refund never reached {status}: {refund}")


async def _failure_delivered(stripe: StripeServer) -> None:
    for _ in range(100):
        failed = [e["id"] for e in stripe.events("refund.failed")]
        if failed and stripe.webhook_deliveries().get(failed[-1]) == "delivered":
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the stand-in never delivered refund.failed")


async def test_failure_during_the_receipt_is_handled_by_the_running_refund(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe)
    app.sink.defer_recipients.add(BUYER)  # the relay greylists the receipt: the run stays in its last step
    started = await request_refund(app, order.code, {"kind": "full", "reason": "customer request"})
    await _refund(app, started["refund_url"], "refunded")
    processor_id = stripe_refunds_for(stripe, order.payment.reference)[0]["id"]
    stripe.force_refund_failure(processor_id, reason="expired_or_canceled_card")
    await _failure_delivered(stripe)
    app.sink.defer_recipients.discard(BUYER)  # the receipt goes on its next retry; then the run reads its news

    refund = await _refund(app, started["refund_url"], "refund-error", waiting=True)
    assert refund["failure_reason"] == "expired_or_canceled_card"
    # The original run took the news and owns the refund; no late-failure run was needed.
    no_follow_up = await app.http.get(f"/operations/{late_failure_workflow_id(refund['id'], 1)}")
    assert no_follow_up.status_code == 404, no_follow_up.text
    view = (await app.http.get(f"/operations/{started['operation_id']}")).json()
    assert view["status"] == "running", view
    async with app.store.transaction() as conn:
        after = await load_order(conn, order.code)
    assert after.refunded_total.amount == 0 and {t.state for t in after.tickets} == {TicketState.VALID}
    await app.sink.wait_for_messages(2, timeout=30)
    assert sorted(m["To"] for m in app.sink.messages) == [BUYER, FINANCE]


async def test_failure_after_the_run_ended_starts_the_late_failure_run(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe)
    started = await request_refund(app, order.code, {"kind": "full", "reason": "customer request"})
    done = await app.wait_operation(started["operation_id"])
    assert done["result"]["status"] == "refunded"
    processor_id = stripe_refunds_for(stripe, order.payment.reference)[0]["id"]
    stripe.force_refund_failure(processor_id, reason="lost_or_stolen_card")
    refund = await _refund(app, started["refund_url"], "refund-error", waiting=True)
    assert refund["failure_reason"] == "lost_or_stolen_card"
    follow_up = (await app.http.get(f"/operations/{late_failure_workflow_id(refund['id'], 1)}")).json()
    assert follow_up["status"] == "running" and follow_up["workflow"] == "Refund", follow_up
