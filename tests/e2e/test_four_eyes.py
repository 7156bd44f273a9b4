"""Four eyes: a refund above the threshold waits until a second finance user approves it.

The requester and approver are authenticated principals, so "someone else" is
enforced on identities the API proved, not on a header the client chose.
"""

from __future__ import annotations

import asyncio
import time
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
from ticketing.states import TicketState
from ticketing.store.engine import Store
from ticketing.store.orders import load_history, load_order
from workflows.search_attributes import REFUND_STATUS

THRESHOLD = 5000  # EUR 50.00; a full refund of the test order is EUR 70.00


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    server = StripeServer(StripeServerConfig())
    await server.start()
    yield server
    await server.stop()


async def _harness(
    client: Client, store: Store, tmp: Path, prefix: str, stripe: StripeServer, expiry_hours: float
) -> Any:
    refunds = RefundConfig(approval_threshold=THRESHOLD, approval_expiry_hours=expiry_hours, poll_initial_seconds=0.5)
    return running(client, store, tmp, prefix, stripe=stripe, settings_overrides={"refunds": refunds})


async def _until_status(app: Harness, refund_url: str, status: str) -> dict[str, Any]:
    for _ in range(100):
        refund: dict[str, Any] = (await app.http.get(refund_url)).json()
        if refund["status"] == status and refund["waiting_for"] is not None:
            return refund
        await asyncio.sleep(0.1)
    raise AssertionError(f"refund never reached {status}: {refund}")


async def _listed_as(app: Harness, order_code: str, status: str) -> list[str]:
    """What the Web UI's filter `RefundStatus = "..."` finds (visibility is eventually consistent)."""
    query = f'RefundStatus = "{status}" AND OrderId = "{order_code}"'
    for _ in range(50):
        found = [w.id async for w in app.client.list_workflows(query)]
        if found:
            return found
        await asyncio.sleep(0.1)
    return []


async def test_a_second_finance_user_approves(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> None:
    async with await _harness(temporal_client, store, tmp_path, queue_prefix, stripe, 48.0) as app:
        order = await card_order(app, stripe, tickets=2)
        preview = await app.http.post(f"/orders/{order.code}/refunds/preview", json={"kind": "full", "reason": "ill"})
        assert preview.json()["needs_approval"] is True
        started = await request_refund(app, order.code, {"kind": "full", "reason": "ill"}, actor="finance-1")
        refund = await _until_status(app, started["refund_url"], "awaiting-approval")
        assert refund["requested_by"] == "finance-1" and refund["approved_by"] is None
        assert stripe_refunds_for(stripe, order.payment.reference) == []

        # What finance sees in the Web UI: the search attribute and the workflow's current details.
        desc = await app.client.get_workflow_handle(started["operation_id"]).describe()
        assert desc.typed_search_attributes.get(REFUND_STATUS) == "awaiting-approval"
        assert await _listed_as(app, order.code, "awaiting-approval") == [started["operation_id"]]
        operation = (await app.http.get(f"/operations/{started['operation_id']}")).json()
        assert operation["status"] == "running"
        assert operation["details"] == "Waiting for approval by a second finance user"
        began = time.monotonic()
        waited = await app.http.get(f"/operations/{started['operation_id']}?wait=300ms")
        assert waited.json()["status"] == "running" and 0.25 < time.monotonic() - began < 5
        assert desc.memo and await desc.memo_value("actor") == "finance-1"

        url = f"{started['refund_url']}/approve"
        own = await app.http.post(url, headers=await app.headers_for("finance-1", "finance"))
        assert own.status_code == 409 and own.json()["type"].endswith("/four-eyes-required")
        support = await app.http.post(url, headers=await app.headers_for("agent-3", "support"))
        assert support.status_code == 403 and support.json()["type"].endswith("/forbidden")
        assert (await app.http.get(started["refund_url"])).json()["status"] == "awaiting-approval"

        approved = await app.http.post(url, headers=await app.headers_for("finance-2", "finance"))
        assert approved.status_code == 200, approved.text
        assert approved.json()["approved_by"] == "finance-2"
        done = await app.wait_operation(started["operation_id"])
        assert done["result"]["status"] == "refunded"
        assert [r["amount"] for r in stripe_refunds_for(stripe, order.payment.reference)] == [7000]
        again = await app.http.post(url, headers=await app.headers_for("finance-3", "finance"))
        assert again.status_code == 409
        async with app.store.transaction() as conn:
            history = await load_history(conn, order.code)
        approvals = [(h.type, h.actor) for h in history if h.type == "refund-approved"]
        assert approvals == [("refund-approved", "finance-2")]
        assert ("refunding-items", "finance-1") in [(h.type, h.actor) for h in history]


async def test_an_unapproved_refund_expires_and_releases_the_amount(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> None:
    async with await _harness(temporal_client, store, tmp_path, queue_prefix, stripe, 3 / 3600) as app:
        order = await card_order(app, stripe, tickets=2)
        started = await request_refund(app, order.code, {"kind": "full", "reason": "ill"}, actor="finance-1")
        await _until_status(app, started["refund_url"], "awaiting-approval")
        async with app.store.transaction() as conn:
            waiting = await load_order(conn, order.code)
        assert waiting.pending_refund_total.amount == 7000

        done = await app.wait_operation(started["operation_id"], timeout=20)
        assert done["status"] == "completed" and done["result"]["status"] == "rejected"
        refund = (await app.http.get(started["refund_url"])).json()
        assert refund["status"] == "rejected" and refund["failure_reason"] == "approval-expired"
        assert refund["approved_by"] is None
        async with app.store.transaction() as conn:
            after = await load_order(conn, order.code)
            history = [h.type for h in await load_history(conn, order.code)]
        assert after.pending_refund_total.amount == 0 and after.refunded_total.amount == 0
        assert {t.state for t in after.tickets} == {TicketState.VALID}
        assert "refund-rejected" in history
        assert stripe_refunds_for(stripe, order.payment.reference) == []
        late = await app.http.post(
            f"{started['refund_url']}/approve", headers=await app.headers_for("finance-2", "finance")
        )
        assert late.status_code == 409 and late.json()["type"].endswith("/operation-closed")
        assert await _listed_as(app, order.code, "rejected") == [started["operation_id"]]
