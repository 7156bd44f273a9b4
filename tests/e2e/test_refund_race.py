"""Ten agents confirm the same refund quote at once: one 202, nine refusals answered synchronously.

The API starts each refund with an update that returns once the ledger row is open
(update-with-start), so the losers hear the ledger's refusal as a 409 with its type
instead of a 202 followed by a failure inside their workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client

from backoffice.operations import Operations
from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from tests.e2e.refund_support import card_order, stripe_refunds_for
from tests.harness import Harness, running
from ticketing.roles import Role
from ticketing.states import RefundStatus
from ticketing.store.audit import refunds_of_orders
from ticketing.store.engine import Store


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    server = StripeServer(StripeServerConfig())
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def app(
    temporal_client: Client, any_store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> AsyncIterator[Harness]:
    async with running(temporal_client, any_store, tmp_path, queue_prefix, stripe=stripe) as harness:
        yield harness


async def test_ten_requests_on_one_quote_one_accepted_nine_refused_at_once(
    app: Harness, stripe: StripeServer
) -> None:
    order = await card_order(app, stripe)
    body = {"kind": "full", "reason": "customer request"}
    preview = await app.http.post(f"/orders/{order.code}/refunds/preview", json=body)
    assert preview.status_code == 200, preview.text
    confirmed = {**body, "quote_hash": preview.json()["quote_hash"]}
    auth = await app.headers_for("finance-1", Role.FINANCE)

    async def confirm() -> tuple[int, str]:
        headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
        resp = await app.http.post(f"/orders/{order.code}/refunds", json=confirmed, headers=headers)
        kind = resp.json().get("type", "").rsplit("/", 1)[-1] if resp.status_code != 202 else "accepted"
        return resp.status_code, kind

    answers = await asyncio.gather(*(confirm() for _ in range(10)))
    statuses = Counter(code for code, _ in answers)
    assert statuses == {202: 1, 409: 9}, answers
    refusals = {kind for code, kind in answers if code == 409}
    assert refusals <= {"amount-exceeds-refundable", "quote-mismatch", "nothing-to-refund"}, answers

    async with app.store.read() as conn:  # the 202 came after the ledger row was opened
        rows = await refunds_of_orders(conn, [order.code])
    assert len(rows) == 1, rows
    for _ in range(100):
        async with app.store.read() as conn:
            (row,) = await refunds_of_orders(conn, [order.code])
        if row.status is RefundStatus.SUCCEEDED:
            break
        await asyncio.sleep(0.1)
    assert row.status is RefundStatus.SUCCEEDED, row
    assert len(stripe_refunds_for(stripe, order.payment.reference)) == 1


async def test_no_worker_in_time_answers_202_with_the_ledger_pending(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every orders worker down the request does not hang: 202, `ledger: pending`, and the run opens the
    ledger row once a worker comes."""
    monkeypatch.setattr(Operations, "update_wait", 1.0)
    async with running(
        temporal_client, store, tmp_path, queue_prefix, stripe=stripe, skip_queues=("orders",)
    ) as app:
        order = await card_order(app, stripe)
        body = {"kind": "full", "reason": "customer request"}
        preview = await app.http.post(f"/orders/{order.code}/refunds/preview", json=body)
        resp = await app.http.post(
            f"/orders/{order.code}/refunds", json={**body, "quote_hash": preview.json()["quote_hash"]},
            headers={**await app.headers_for("finance-1", Role.FINANCE), "Idempotency-Key": "no-worker"},
        )
        assert resp.status_code == 202, resp.text
        assert resp.json()["ledger"] == "pending"
        async with app.store.read() as conn:
            assert await refunds_of_orders(conn, [order.code]) == []
        async with contextlib.AsyncExitStack() as workers:
            for worker in app.extra["build_workers"]("orders"):
                await workers.enter_async_context(worker)
            done = await app.wait_operation(resp.json()["operation_id"])
        assert done["result"]["status"] == "refunded", done
