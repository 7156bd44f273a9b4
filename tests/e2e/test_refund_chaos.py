"""Chaos: a worker process SIGKILLed between the processor call and the ledger update.

The refund exists at Stripe, the ledger still says `refunding`, the worker is
gone. A new worker retries the activity with the same idempotency key and
Stripe answers with the same refund: one refund, a consistent ledger.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client

from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from runtime.settings import RefundConfig
from tests.e2e.refund_support import card_order, request_refund, stripe_refunds_for
from tests.harness import Harness, running, worker_env
from ticketing.states import RefundStatus, TicketState
from ticketing.store.engine import Store
from ticketing.store.orders import load_order
from ticketing.store.refunds import load_refund

pytestmark = pytest.mark.slow


def _worker(app: Harness, stripe: StripeServer, log: Path) -> subprocess.Popen[bytes]:
    env = worker_env(app)
    return subprocess.Popen(
        [sys.executable, "-m", "workers.main"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    async with StripeServer(StripeServerConfig()) as server:
        yield server


async def test_worker_killed_between_processor_and_ledger(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> None:
    fast = RefundConfig(payment_timeout_seconds=5.0, poll_initial_seconds=0.5)
    async with running(
        temporal_client, store, tmp_path, queue_prefix, stripe=stripe, with_workers=False,
        settings_overrides={"refunds": fast},
    ) as app:
        order = await card_order(app, stripe, tickets=2)
        # The processor will carry out the refund but the response is lost on the way back (the look for
        # an earlier refund, a GET, goes through: a submission asks before it creates).
        stripe.inject_faults(1.0, mode="after", method="POST", path="/v1/refunds")
        first = _worker(app, stripe, tmp_path / "worker-1.log")
        try:
            started = await request_refund(app, order.code, {"kind": "full", "reason": "chaos"})
            for _ in range(3000):  # the worker process needs a few seconds to start
                if stripe_refunds_for(stripe, order.payment.reference) or first.poll() is not None:
                    break
                await asyncio.sleep(0.01)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        log = (tmp_path / "worker-1.log").read_text()
        assert len(stripe_refunds_for(stripe, order.payment.reference)) == 1, log[-3000:]
        async with app.store.transaction() as conn:
            mid = await load_refund(conn, started["refund_id"])
        assert mid.status is RefundStatus.REFUNDING and mid.processor_refund_id is None

        stripe.inject_faults(0.0)
        second = _worker(app, stripe, tmp_path / "worker-2.log")
        try:
            done = await app.wait_operation(started["operation_id"], timeout=90)
        finally:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(timeout=20)
            except subprocess.TimeoutExpired:
                second.kill()
        assert done["status"] == "completed", done
        at_stripe = stripe_refunds_for(stripe, order.payment.reference)
        assert [(r["amount"], r["status"]) for r in at_stripe] == [(7000, "succeeded")]
        async with app.store.transaction() as conn:
            refund = await load_refund(conn, started["refund_id"])
            after = await load_order(conn, order.code)
        assert refund.status is RefundStatus.SUCCEEDED and refund.processor_refund_id == at_stripe[0]["id"]
        assert after.refunded_total.amount == 7000 and after.pending_refund_total.amount == 0
        assert {t.state for t in after.tickets} == {TicketState.REFUNDED}
        posts = [r for r in stripe.request_log if r.method == "POST" and r.path == "/v1/refunds"]
        assert len({r.idempotency_key for r in posts}) == 1
        # The retry asked the processor for the refund by its key before creating anything.
        assert any(r.method == "GET" and r.path == "/v1/refunds" for r in stripe.request_log)
