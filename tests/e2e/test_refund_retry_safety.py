"""A retried refund never pays twice: before any submission the processor is asked for a refund of ours.

A refund goes to refund-error when its confirmation window runs out with the
processor's refund still pending; the processor may pay it later. When its news
comes (webhook), the ledger's rule makes the refund-error refunded (the run
waiting for finance takes it; a closed run's follow-up run does). When the news
was lost, finance's retry (a new attempt, a new idempotency key) finds that
refund and adopts its outcome through the same rule instead of paying the buyer
again. Only when every earlier attempt failed does the retry make a new
processor refund.

The API, the workers and the Stripe stand-in are real (over HTTP, webhooks
on); the ten-business-day window passes on a time-skipping dev server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from devtools.stripe_server.server import StripeServer
from runtime.settings import RefundConfig
from tests.e2e.refund_support import NEVER_SETTLES, card_order, request_refund, stripe_refunds_for, time_skipped_app
from tests.harness import Harness
from ticketing.models import Order, Processor
from ticketing.refunds import late_answer_workflow_id
from ticketing.states import RefundStatus, TicketState
from ticketing.store.engine import Store
from ticketing.store.orders import load_history, load_order
from ticketing.store.refunds import load_refund
from workflows.contracts import RefundInput, RefundResult
from workflows.refund import RefundWorkflow

# A one-business-day window with hourly polls: the refund-error comes after a fast-forward of a few days.
SHORT_WINDOW = RefundConfig(confirmation_business_days=1, poll_initial_seconds=3600, poll_max_seconds=86400)
BUYER = "ada@example.com"


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    # `pm_card_pendingRefund` refunds stay pending until a test releases or fails them.
    async with StripeServer(NEVER_SETTLES) as server:
        yield server


@pytest_asyncio.fixture
async def app(
    time_skipping_env: WorkflowEnvironment, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> AsyncIterator[Harness]:
    async with time_skipped_app(
        time_skipping_env, store, tmp_path, queue_prefix, stripe, SHORT_WINDOW, webhooks=True
    ) as harness:
        yield harness


async def _reaches(app: Harness, url: str, status: str, *, attempt: int = 1, waiting: str = "") -> dict[str, Any]:
    """Poll the refund until it is in `status` on `attempt` (and its run says it waits for `waiting`)."""
    refund: dict[str, Any] = {}
    for _ in range(300):
        refund = (await app.http.get(url)).json()
        if refund["status"] == status and refund["attempt"] == attempt and waiting in (refund["waiting_for"] or ""):
            return refund
        await asyncio.sleep(0.1)
    raise AssertionError(f"the refund never reached {status} (attempt {attempt}): {refund}")


async def _timed_out(
    app: Harness, stripe: StripeServer, env: WorkflowEnvironment, *, one_ticket: bool = False
) -> tuple[Order, dict[str, Any], dict[str, Any]]:
    """A card refund whose processor refund stays pending past the window: refund-error, finance waited for.

    Returns the order, the API's answer to the request, and the processor refund (pending)."""
    order = await card_order(app, stripe, card="pm_card_pendingRefund")
    body: dict[str, Any] = {"kind": "full", "reason": "show moved"}
    if one_ticket:  # the charge keeps room for a second refund, so nothing at the processor would stop one
        body = {"kind": "tickets", "ticket_ids": [order.tickets[0].id], "reason": "seat broken"}
    with env.with_time_skipping_disabled():
        started = await request_refund(app, order.code, body)
    await _reaches(app, started["refund_url"], "confirming-refund")
    await env.fast_forward(app.client.get_workflow_handle(started["operation_id"]), timedelta(days=4))
    refund = await _reaches(app, started["refund_url"], "refund-error", waiting="waiting for finance")
    assert refund["failure_reason"] == "confirmation-timeout"
    [first] = stripe_refunds_for(stripe, order.payment.reference)
    assert first["status"] == "pending"
    return order, started, first


async def _news_delivered(stripe: StripeServer, refund_id: str) -> None:
    """Wait until every event about the processor refund reached our webhook."""
    for _ in range(200):
        ids = [e["id"] for e in stripe.events() if e["data"]["object"].get("id") == refund_id]
        deliveries = stripe.webhook_deliveries()
        if ids and all(deliveries.get(i) == "delivered" for i in ids):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the events of {refund_id} were not delivered")


async def _retry(app: Harness, url: str) -> dict[str, Any]:
    retried = await app.http.post(f"{url}/retry", headers=await app.headers_for("finance-2", "finance"))
    assert retried.status_code == 200, retried.text
    body: dict[str, Any] = retried.json()
    return body


async def _one_receipt(app: Harness) -> None:
    await app.sink.wait_for_messages(2, timeout=20)  # finance's refund-error notice and the buyer's receipt
    await asyncio.sleep(0.5)  # a second receipt, were one sent, would be here by now
    receipts = [m for m in app.sink.messages if m["To"] == BUYER]
    assert len(receipts) == 1 and "Refund" in receipts[0]["Subject"], [m["Subject"] for m in receipts]


async def _refunded_once(
    app: Harness, stripe: StripeServer, order: Order, refund_id: str, first: dict[str, Any]
) -> None:
    """The ledger took the processor's one refund: totals, the ticket, one success in the history, one receipt."""
    async with app.store.transaction() as conn:
        after = await load_order(conn, order.code)
        ledger = await load_refund(conn, refund_id)
        history = [h.type for h in await load_history(conn, order.code)]
    assert ledger.status is RefundStatus.SUCCEEDED and ledger.processor_refund_id == first["id"]
    assert after.refunded_total.amount == first["amount"] and after.pending_refund_total.amount == 0
    assert [t.state for t in after.tickets] == [TicketState.REFUNDED, TicketState.VALID]
    assert history.count("item-refunded") == 1 and history.count("refund-error") == 1
    assert [r["id"] for r in stripe_refunds_for(stripe, order.payment.reference)] == [first["id"]]  # paid once
    await _one_receipt(app)


async def _refund_errors(app: Harness) -> list[str]:
    """Finance's refund-error list (the API's)."""
    listed = await app.http.get("/refunds", params={"status": "refund-error"})
    assert listed.status_code == 200, listed.text
    return [r["id"] for r in listed.json()]


async def test_a_late_success_while_the_run_waits_in_refund_error_makes_it_refunded(
    app: Harness, stripe: StripeServer, time_skipping_env: WorkflowEnvironment
) -> None:
    """The bank pays after the window; the webhook reaches the run waiting for finance, which settles it."""
    order, started, first = await _timed_out(app, stripe, time_skipping_env, one_ticket=True)
    assert started["refund_id"] in await _refund_errors(app)
    stripe.release_refund(first["id"])
    refund = await _reaches(app, started["refund_url"], "refunded")
    assert refund["attempt"] == 1 and refund["processor_refund_id"] == first["id"]
    await _refunded_once(app, stripe, order, started["refund_id"], first)
    assert started["refund_id"] not in await _refund_errors(app)
    creates = [r for r in stripe.request_log if r.method == "POST" and r.path == "/v1/refunds"]
    assert len(creates) == 1
    # Finance's retry now has nothing to do: refused (its run has ended, refunded).
    retried = await app.http.post(
        f"{started['refund_url']}/retry", headers=await app.headers_for("finance-2", "finance")
    )
    assert retried.status_code == 409 and retried.json()["type"].endswith("/operation-closed"), retried.text


async def test_a_late_success_after_the_run_closed_is_settled_by_its_follow_up_run(
    app: Harness, stripe: StripeServer, time_skipping_env: WorkflowEnvironment
) -> None:
    """Finance's window ended and the run closed in refund-error; the webhook starts the follow-up run."""
    order, started, first = await _timed_out(app, stripe, time_skipping_env, one_ticket=True)
    original = app.client.get_workflow_handle(started["operation_id"], result_type=RefundResult)
    await time_skipping_env.fast_forward(original, timedelta(days=app.settings.refunds.finance_action_days + 1))
    closed = await original.result()
    assert closed.status == "refund-error"
    stripe.release_refund(first["id"])
    await _news_delivered(stripe, first["id"])
    follow_up = app.client.get_workflow_handle(
        late_answer_workflow_id(started["refund_id"], 1), result_type=RefundResult
    )
    assert (await follow_up.result()).status == "refunded"
    await _refunded_once(app, stripe, order, started["refund_id"], first)
    assert started["refund_id"] not in await _refund_errors(app)


async def test_a_late_failure_keeps_refund_error_with_the_processors_reason(
    app: Harness, stripe: StripeServer, time_skipping_env: WorkflowEnvironment
) -> None:
    _, started, first = await _timed_out(app, stripe, time_skipping_env)
    stripe.force_refund_failure(first["id"], "expired_or_canceled_card")
    await _reaches(app, started["refund_url"], "refund-error", waiting="expired_or_canceled_card")
    async with app.store.transaction() as conn:
        ledger = await load_refund(conn, started["refund_id"])
    assert (ledger.status, ledger.failure_reason) == (RefundStatus.FAILED, "expired_or_canceled_card")
    assert ledger.processor_refund_id == first["id"] and ledger.attempt == 1


async def test_a_retry_the_ledger_refuses_is_a_409_and_the_run_still_waits(
    app: Harness, stripe: StripeServer, time_skipping_env: WorkflowEnvironment
) -> None:
    """The refund-error's amount went to a second refund meanwhile: `amount-exceeds-refundable`, run untouched."""
    order, started, first = await _timed_out(app, stripe, time_skipping_env)
    stripe.fail_refund_silently(first["id"])  # the charge has room again at the processor; nobody is told
    with time_skipping_env.with_time_skipping_disabled():
        second = await request_refund(app, order.code, {"kind": "full", "reason": "asked again"})
    await _reaches(app, second["refund_url"], "confirming-refund")
    retried = await app.http.post(
        f"{started['refund_url']}/retry", headers=await app.headers_for("finance-2", "finance")
    )
    assert retried.status_code == 409 and retried.json()["type"].endswith("/amount-exceeds-refundable"), retried.text
    marked = await app.http.post(
        f"{started['refund_url']}/mark-refunded", json={"reference": "BANK-1"},
        headers=await app.headers_for("finance-2", "finance"),
    )
    assert marked.status_code == 409 and marked.json()["type"].endswith("/amount-exceeds-refundable"), marked.text
    still = await _reaches(app, started["refund_url"], "refund-error", waiting="waiting for finance")
    assert still["attempt"] == 1
    handle = app.client.get_workflow_handle(started["operation_id"])
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_retry_after_a_late_success_nobody_heard_of_adopts_it_and_pays_nothing_more(
    app: Harness, stripe: StripeServer, time_skipping_env: WorkflowEnvironment
) -> None:
    order, started, first = await _timed_out(app, stripe, time_skipping_env, one_ticket=True)
    # The bank pays it after all, days after the window, and its webhook is lost: the run does not know.
    stripe.drop_webhooks(None, object_id=first["id"])
    stripe.release_refund(first["id"])

    await _retry(app, started["refund_url"])
    refund = await _reaches(app, started["refund_url"], "refunded", attempt=2)

    at_stripe = stripe_refunds_for(stripe, order.payment.reference)
    assert [(r["id"], r["status"]) for r in at_stripe] == [(first["id"], "succeeded")]  # nothing paid twice
    creates = [r for r in stripe.request_log if r.method == "POST" and r.path == "/v1/refunds"]
    assert {r.idempotency_key for r in creates} == {f"{started['operation_id']}/attempt-1"}
    assert refund["processor_refund_id"] == first["id"]
    async with app.store.transaction() as conn:
        after = await load_order(conn, order.code)
        ledger = await load_refund(conn, started["refund_id"])
        history = [h.type for h in await load_history(conn, order.code)]
    assert ledger.processor_refund_id == first["id"] and ledger.attempt == 2
    assert after.refunded_total.amount == first["amount"] and after.pending_refund_total.amount == 0
    assert [t.state for t in after.tickets] == [TicketState.REFUNDED, TicketState.VALID]
    assert history.count("item-refunded") == 1 and history.count("refund-error") == 1
    await _one_receipt(app)


async def test_paying_by_hand_what_the_processor_paid_or_may_pay_is_refused(
    app: Harness, stripe: StripeServer, time_skipping_env: WorkflowEnvironment
) -> None:
    _, started, first = await _timed_out(app, stripe, time_skipping_env)
    finance = await app.headers_for("finance-2", "finance")
    url = f"{started['refund_url']}/mark-refunded"
    pending = await app.http.post(url, json={"reference": "BANK-1"}, headers=finance)
    assert pending.status_code == 409 and pending.json()["type"].endswith("/processor-refund-exists"), pending.text
    assert pending.json()["processor_status"] == "pending"
    stripe.drop_webhooks(None, object_id=first["id"])  # heard, the run would make it refunded itself
    stripe.release_refund(first["id"])
    paid = await app.http.post(url, json={"reference": "BANK-1"}, headers=finance)
    assert paid.status_code == 409 and paid.json()["processor_refund_id"] == first["id"]
    assert (await app.http.get(started["refund_url"])).json()["status"] == "refund-error"
    # Once the processor's refund failed, paying by hand is finance's to do.
    stripe.force_refund_failure(first["id"], "lost_or_stolen_card")
    done = await app.http.post(url, json={"reference": "BANK-1"}, headers=finance)
    assert done.status_code == 200 and done.json()["status"] == "refunded", done.text


async def test_retry_after_a_still_pending_refund_waits_for_it_again(
    app: Harness, stripe: StripeServer, time_skipping_env: WorkflowEnvironment
) -> None:
    order, started, first = await _timed_out(app, stripe, time_skipping_env)

    await _retry(app, started["refund_url"])
    waiting = await _reaches(app, started["refund_url"], "confirming-refund", attempt=2)
    assert waiting["processor_refund_id"] == first["id"]  # the pending one is adopted, not doubled
    assert len(stripe_refunds_for(stripe, order.payment.reference)) == 1
    stripe.release_refund(first["id"])  # and its success, by webhook, ends it
    await _reaches(app, started["refund_url"], "refunded", attempt=2)
    assert [r["status"] for r in stripe_refunds_for(stripe, order.payment.reference)] == ["succeeded"]


async def test_retry_after_a_genuine_failure_submits_a_new_refund(
    app: Harness, stripe: StripeServer, time_skipping_env: WorkflowEnvironment
) -> None:
    order, started, first = await _timed_out(app, stripe, time_skipping_env)
    stripe.force_refund_failure(first["id"], "expired_or_canceled_card")  # the money never left
    await _news_delivered(stripe, first["id"])
    await _reaches(app, started["refund_url"], "refund-error", waiting="expired_or_canceled_card")

    await _retry(app, started["refund_url"])
    waiting = await _reaches(app, started["refund_url"], "confirming-refund", attempt=2)
    second = waiting["processor_refund_id"]
    assert second and second != first["id"]
    stripe.release_refund(second)
    refund = await _reaches(app, started["refund_url"], "refunded", attempt=2)
    assert refund["processor_refund_id"] == second
    at_stripe = {r["id"]: r["status"] for r in stripe_refunds_for(stripe, order.payment.reference)}
    assert at_stripe == {first["id"]: "failed", second: "succeeded"}
    creates = [r for r in stripe.request_log if r.method == "POST" and r.path == "/v1/refunds"]
    assert [r.idempotency_key for r in creates] == [
        f"{started['operation_id']}/attempt-1", f"{started['operation_id']}/attempt-2"
    ]
    async with app.store.transaction() as conn:
        after = await load_order(conn, order.code)
    assert after.refunded_total.amount == first["amount"] and after.pending_refund_total.amount == 0


async def test_a_lost_answer_retried_after_the_key_expired_is_one_refund(
    app: Harness, stripe: StripeServer, time_skipping_env: WorkflowEnvironment
) -> None:
    order = await card_order(app, stripe)
    # Stripe makes the refund, the answer is lost, and by the activity's retry the key has expired.
    stripe.inject_faults(1.0, mode="after_expired", method="POST", path="/v1/refunds", count=1)
    with time_skipping_env.with_time_skipping_disabled():
        started = await request_refund(app, order.code, {"kind": "full", "reason": "lost answer"})
    refund = await _reaches(app, started["refund_url"], "refunded")
    [made] = stripe_refunds_for(stripe, order.payment.reference)
    assert refund["processor_refund_id"] == made["id"]
    creates = [r.status for r in stripe.request_log if r.method == "POST" and r.path == "/v1/refunds"]
    assert creates == [500]  # the retry adopted it; it never asked again


async def test_a_restarted_orphan_in_refunding_adopts_what_its_lost_run_made(
    app: Harness, stripe: StripeServer, time_skipping_env: WorkflowEnvironment
) -> None:
    """Reconciliation restarts an orphan by its workflow id; a run in refunding must not pay again."""
    order = await card_order(app, stripe)
    stripe.inject_faults(1.0, mode="before", method="POST", path="/v1/refunds")
    with time_skipping_env.with_time_skipping_disabled():
        started = await request_refund(app, order.code, {"kind": "full", "reason": "orphan"})
    for _ in range(200):
        if any(r.path == "/v1/refunds" and r.method == "POST" for r in stripe.request_log):
            break
        await asyncio.sleep(0.05)
    await app.client.get_workflow_handle(started["operation_id"]).terminate("its worker and history were lost")
    async with app.store.transaction() as conn:
        ledger = await load_refund(conn, started["refund_id"])
    assert ledger.status is RefundStatus.REFUNDING
    # What the lost run's last try did at Stripe: the refund was made and the answer never came back.
    stripe.inject_faults(0.0)
    made = await app.deps.payments[Processor.STRIPE].create_refund(
        payment_reference=order.payment.reference or "", amount=ledger.amount,
        idempotency_key=ledger.idempotency_key,
        metadata={"refund_id": ledger.id, "order_code": order.code, "workflow_id": ledger.workflow_id},
    )
    stripe.forget_idempotency_keys()  # a day later
    # The heal, as reconciliation's `restart-refund` starts it.
    restarted = await app.client.start_workflow(
        RefundWorkflow.run,
        RefundInput(order_code=order.code, actor="reconciliation", refund_id=ledger.id,
                    existing_refund_id=ledger.id, timing=app.settings.refunds.timing()),
        id=ledger.workflow_id, task_queue=f"{app.prefix}orders",
    )
    result = await restarted.result()
    assert result.status == RefundStatus.SUCCEEDED
    assert [r["id"] for r in stripe_refunds_for(stripe, order.payment.reference)] == [made.id]
    async with app.store.transaction() as conn:
        ledger = await load_refund(conn, started["refund_id"])
    assert ledger.processor_refund_id == made.id
