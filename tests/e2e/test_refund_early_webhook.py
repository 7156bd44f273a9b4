"""A webhook that arrives before the workflow reaches confirming-refund is still used.

The payments worker is held back: the processor already has the refund (an
earlier attempt whose answer never reached us) and its webhooks come in while
the workflow still waits to submit. When the worker comes back, Stripe replays
the pending refund for the same idempotency key, and the buffered webhook
settles it at once, without waiting for a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.client import Client

from devtools.stripe_server.client import stripe_client
from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from runtime.settings import RefundConfig
from tests.e2e.refund_support import card_order, request_refund, stripe_refunds_for
from tests.harness import running
from ticketing.states import RefundStatus
from ticketing.store.engine import Store
from ticketing.store.refunds import load_refund


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    async with StripeServer(StripeServerConfig(pending_refund_settle_seconds=0.3)) as server:
        yield server


async def test_webhook_before_confirming(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> None:
    never_poll = RefundConfig(poll_initial_seconds=3600, poll_max_seconds=3600)
    async with running(
        temporal_client, store, tmp_path, queue_prefix, stripe=stripe, webhooks=True,
        skip_queues=("payments",), settings_overrides={"refunds": never_poll},
    ) as app:
        order = await card_order(app, stripe, card="pm_card_pendingRefund")
        started = await request_refund(app, order.code, {"kind": "full", "reason": "early webhook"})
        for _ in range(100):
            async with app.store.transaction() as conn:
                try:
                    refund = await load_refund(conn, started["refund_id"])
                    break
                except Exception:
                    pass
            await asyncio.sleep(0.05)
        assert refund.status is RefundStatus.REFUNDING
        client = stripe_client(stripe.base_url, stripe.config.api_key)
        params: Any = {
            "payment_intent": order.payment.reference,
            "amount": refund.amount.amount,
            "metadata": {
                "refund_id": refund.id,
                "order_code": order.code,
                "workflow_id": started["operation_id"],
                "idempotency_key": refund.idempotency_key,
            },
        }
        await client.v1.refunds.create_async(params=params, options={"idempotency_key": refund.idempotency_key})
        for _ in range(100):
            if any(e["type"] == "refund.updated" for e in stripe.events()) and stripe.webhook_deliveries():
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the succeeded webhook has been delivered and signalled
        async with app.store.transaction() as conn:
            still = await load_refund(conn, refund.id)
        assert still.status is RefundStatus.REFUNDING  # the workflow never got to submit

        (payments,) = app.extra["build_workers"]("payments")
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(payments)
            done = await app.wait_operation(started["operation_id"], timeout=30)
        assert done["result"]["status"] == "refunded"
        assert len(stripe_refunds_for(stripe, order.payment.reference)) == 1
        polls = [r for r in stripe.request_log if r.method == "GET" and r.path.startswith("/v1/refunds/")]
        webhook_fetches = len(stripe.webhook_deliveries())
        assert len(polls) <= webhook_fetches  # only the webhook handler's re-fetches, no poll
