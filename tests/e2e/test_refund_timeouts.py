"""Long waits of the refund, with time skipping: ten business days pass in seconds.

The workflows are started through the real API with a time-skipping client, so
the durable timers (poll back-off, confirmation window, finance reminders) fire
as the virtual clock jumps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from devtools.stripe_server.server import StripeServer
from runtime.settings import RefundConfig
from tests.e2e.refund_support import NEVER_SETTLES, card_order, request_refund, time_skipped_app
from tests.harness import Harness
from ticketing.models import PaymentMethod
from ticketing.states import TicketState
from ticketing.store.engine import Store
from ticketing.store.orders import load_history, load_order
from ticketing.store.refunds import load_refund

# Hourly polls backing off to daily keep the number of processor calls small over two weeks.
SLOW_POLLS = RefundConfig(poll_initial_seconds=3600, poll_max_seconds=86400, manual_reminder_days=3)


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    async with StripeServer(NEVER_SETTLES) as server:
        yield server


@pytest_asyncio.fixture
async def app(
    time_skipping_env: WorkflowEnvironment, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> AsyncIterator[Harness]:
    async with time_skipped_app(time_skipping_env, store, tmp_path, queue_prefix, stripe, SLOW_POLLS) as harness:
        yield harness


async def test_confirmation_timeout_becomes_refund_error(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, card="pm_card_pendingRefund")
    started = await request_refund(app, order.code, {"kind": "full", "reason": "never confirmed"})
    handle = app.client.get_workflow_handle(started["operation_id"])
    # Nobody acts on the refund-error; the finance window (30 days) passes too and the run ends.
    result = await handle.result()
    assert result["status"] == "refund-error" if isinstance(result, dict) else result.status == "refund-error"
    async with app.store.transaction() as conn:
        refund = await load_refund(conn, started["refund_id"])
        after = await load_order(conn, order.code)
        history = [h.type for h in await load_history(conn, order.code)]
    assert refund.status.value == "refund-error" and refund.failure_reason == "confirmation-timeout"
    assert after.pending_refund_total.amount == 0 and {t.state for t in after.tickets} == {TicketState.VALID}
    assert history[1:4] == ["refunding-items", "confirming-refund", "refund-error"]
    fetches = [r for r in stripe.request_log if r.method == "GET" and r.path.startswith("/v1/refunds/")]
    assert 5 <= len(fetches) <= 40  # polled with back-off, not hammered
    finance = [m for m in app.sink.messages if m["To"] == "finance@ticketops.local"]
    assert len(finance) == 1 and "failed" in finance[0]["Subject"]


async def test_manual_refund_reminds_finance_until_marked(
    app: Harness, stripe: StripeServer, time_skipping_env: WorkflowEnvironment
) -> None:
    order = await card_order(app, stripe, method=PaymentMethod.INVOICE)
    with time_skipping_env.with_time_skipping_disabled():
        started = await request_refund(app, order.code, {"kind": "full", "reason": "invoice cancelled"})
    handle = app.client.get_workflow_handle(started["operation_id"])
    for _ in range(100):
        refund = (await app.http.get(started["refund_url"])).json()
        if refund["status"] == "awaiting-manual" and refund["waiting_for"]:
            break
        await asyncio.sleep(0.05)
    # Ten virtual days without finance: reminders on days 3, 6 and 9.
    await time_skipping_env.fast_forward(handle, timedelta(days=10))
    await app.sink.wait_for_messages(3, timeout=20)
    reminders = [m for m in app.sink.messages if m["Subject"].endswith("is waiting")]
    assert len(reminders) == 3 and {m["To"] for m in reminders} == {"finance@ticketops.local"}
    assert len({m["Message-ID"] for m in reminders}) == 3
    marked = await app.http.post(f"{started['refund_url']}/mark-refunded", json={"reference": "SEPA-1"})
    assert marked.status_code == 200 and marked.json()["status"] == "refunded"
