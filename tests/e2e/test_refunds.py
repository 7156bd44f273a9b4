"""Refunds end to end: API -> RefundWorkflow -> Stripe stand-in over HTTP -> ledger, tickets, email."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devtools.stripe_server.server import StripeServer
from tests.e2e.refund_support import card_order, deliver_signed, refund_reaches, request_refund, stripe_refunds_for
from tests.harness import Harness
from ticketing.models import EventPolicy, PaymentMethod
from ticketing.refunds import late_failure_workflow_id
from ticketing.states import TicketState
from ticketing.store.orders import load_history, load_order


@pytest.fixture
def app(stripe_app: Harness) -> Harness:
    return stripe_app


async def _waiting_in_refund_error(app: Harness, refund_url: str, attempt: int = 1) -> dict[str, Any]:
    """Poll the refund until it is in refund-error with its run waiting for finance (finance told).

    The refund's `waiting_for` names what its status waits for even before the run got there, so
    the run's own details say when it waits: the late-failure run's, if one took over, else the first's.
    """
    for _ in range(200):
        refund: dict[str, Any] = (await app.http.get(refund_url)).json()
        if refund["status"] == "refund-error" and refund["attempt"] == attempt:
            for run in (late_failure_workflow_id(refund["id"], attempt), refund["operation_id"]):
                view = await app.http.get(f"/operations/{run}")
                if view.status_code == 200 and "waiting for finance" in (view.json().get("details") or ""):
                    return refund
        await asyncio.sleep(0.1)
    raise AssertionError(f"the refund's run never waited for finance in refund-error: {refund}")


async def _follow_up_ended(app: Harness, refund_id: str) -> None:
    """Wait for the run that took over a refund Stripe failed after its first success, if one did.

    The failure comes 0.5 s after success: while the first run still sends the receipt, that run
    takes the news and handles it itself; after it ended, the webhook starts the late-failure run.
    """
    follow_up = late_failure_workflow_id(refund_id, 1)
    if (await app.http.get(f"/operations/{follow_up}")).status_code == 404:
        return
    done = await app.wait_operation(follow_up)
    assert done["status"] == "completed" and done["result"]["status"] == "refunded", done


async def _finance_notices(app: Harness, count: int) -> list[Any]:
    """Finance's notices once `count` arrived (the ledger says refund-error a moment before the run mails)."""
    for _ in range(100):
        finance = [m for m in app.sink.messages if m["To"] == "finance@ticketops.local"]
        if len(finance) >= count:
            break
        await asyncio.sleep(0.1)
    return finance


async def _history(app: Harness, code: str) -> list[str]:
    async with app.store.transaction() as conn:
        return [h.type for h in await load_history(conn, code)]


async def test_full_card_refund(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, tickets=2)
    started = await request_refund(app, order.code, {"kind": "full", "reason": "customer cannot attend"})
    done = await app.wait_operation(started["operation_id"])
    assert done["status"] == "completed", done
    assert done["result"]["status"] == "refunded"
    assert done["result"]["amount"] == 7000  # 2 x 35.00; the 2.50 service fee is kept

    at_stripe = stripe_refunds_for(stripe, order.payment.reference)
    assert [(r["amount"], r["status"]) for r in at_stripe] == [(7000, "succeeded")]
    refund = (await app.http.get(started["refund_url"])).json()
    assert refund["status"] == "refunded"
    assert refund["processor_refund_id"] == at_stripe[0]["id"]
    assert refund["fees_kept"]["amount"] == 250

    async with app.store.transaction() as conn:
        after = await load_order(conn, order.code)
    assert after.refunded_total.amount == 7000 and after.pending_refund_total.amount == 0
    assert {t.state for t in after.tickets} == {TicketState.REFUNDED}
    assert await _history(app, order.code) == [
        "order-created", "refunding-items", "item-refunded", "refund-receipt-sent"
    ]
    receipts = [m for m in app.sink.messages if m["To"] == "ada@example.com"]
    assert len(receipts) == 1 and "EUR 70.00" in receipts[0]["Subject"]
    detail = (await app.http.get(f"/orders/{order.code}")).json()
    assert next(a for a in detail["actions"] if a["name"] == "refund")["reason_type"] == "nothing-to-refund"


async def test_same_request_twice_is_one_refund(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe)
    body = {"kind": "tickets", "ticket_ids": [order.tickets[0].id], "reason": "duplicate purchase"}
    first = await request_refund(app, order.code, body, key="refund-req-1")
    await app.wait_operation(first["operation_id"])
    preview_hash = next(
        r for r in [await app.http.get(f"/operations/{first['operation_id']}")] if r.status_code == 200
    )
    assert preview_hash
    # The client did not see the 202 and sends the very same request again, after the refund happened.
    replay = await app.http.post(
        f"/orders/{order.code}/refunds",
        json={**body, "quote_hash": first["quote_hash"]},
        headers={**await app.headers_for("finance-1", "finance"), "Idempotency-Key": "refund-req-1"},
    )
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["refund_id"] == first["refund_id"]
    assert len(stripe_refunds_for(stripe, order.payment.reference)) == 1
    async with app.store.transaction() as conn:
        after = await load_order(conn, order.code)
    assert after.refunded_total.amount == 3500
    assert [t.state for t in after.tickets] == [TicketState.REFUNDED, TicketState.VALID]


async def test_pending_refund_confirmed_by_webhook(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, card="pm_card_pendingRefund")
    started = await request_refund(app, order.code, {"kind": "amount", "amount": {"amount": 1000, "currency": "EUR"},
                                                     "reason": "goodwill for the late start"})
    done = await app.wait_operation(started["operation_id"])
    assert done["result"]["status"] == "refunded"
    history = await _history(app, order.code)
    assert history[:4] == ["order-created", "refunding-items", "confirming-refund", "item-refunded"]
    async with app.store.transaction() as conn:
        after = await load_order(conn, order.code)
    assert {t.state for t in after.tickets} == {TicketState.VALID}  # goodwill keeps tickets
    assert after.refunded_total.amount == 1000
    assert stripe.webhook_deliveries()  # the stand-in did call our endpoint


async def test_refund_failure_then_finance_marks_it_refunded(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, card="pm_card_refundFail")
    started = await request_refund(app, order.code, {"kind": "full", "reason": "event moved"})
    refund_url = started["refund_url"]
    refund = await _waiting_in_refund_error(app, refund_url)
    assert refund["failure_reason"] == "expired_or_canceled_card"
    async with app.store.transaction() as conn:
        mid = await load_order(conn, order.code)
    assert {t.state for t in mid.tickets} == {TicketState.VALID}
    assert mid.refunded_total.amount == 0 and mid.pending_refund_total.amount == 0
    finance = await _finance_notices(app, 1)
    assert len(finance) == 1 and "failed" in finance[0]["Subject"]

    marked = await app.http.post(f"{refund_url}/mark-refunded", json={"reference": "BANK-2026-0042"},
                                 headers=await app.headers_for("finance-2", "finance"))
    assert marked.status_code == 200, marked.text
    assert marked.json()["status"] == "refunded" and marked.json()["manual_reference"] == "BANK-2026-0042"
    done = await app.wait_operation(started["operation_id"])
    assert done["result"]["status"] == "refunded"
    # The card's refund "succeeds" first; if the late-failure run handled the failure, it sends the
    # receipt after the mark: until it ends, a second mark meets it (refund-not-markable).
    await _follow_up_ended(app, refund["id"])
    async with app.store.transaction() as conn:
        final = await load_order(conn, order.code)
    assert final.refunded_total.amount == 7000
    assert {t.state for t in final.tickets} == {TicketState.REFUNDED}
    assert "marked-refunded" in await _history(app, order.code)
    again = await app.http.post(f"{refund_url}/mark-refunded", json={"reference": "X"})
    assert again.status_code == 409 and again.json()["type"].endswith("/operation-closed")


async def test_failure_news_after_finance_paid_by_hand_changes_nothing(app: Harness, stripe: StripeServer) -> None:
    """Stripe reports one failure in three events; those arriving after finance paid by hand are not news.

    Treating them as a failure after success once reopened the order: tickets valid again,
    the refunded total taken back, although the customer had the money from finance.
    """
    order = await card_order(app, stripe, card="pm_card_refundFail")
    started = await request_refund(app, order.code, {"kind": "full", "reason": "event moved"})
    refund = await _waiting_in_refund_error(app, started["refund_url"])
    marked = await app.http.post(f"{started['refund_url']}/mark-refunded", json={"reference": "BANK-7"},
                                 headers=await app.headers_for("finance-2", "finance"))
    assert marked.status_code == 200, marked.text
    await app.wait_operation(started["operation_id"])
    await _follow_up_ended(app, refund["id"])

    late = dict(stripe.events("charge.refund.updated")[-1], id="evt_late_news_after_manual_payout")
    assert await deliver_signed(app, stripe, late) == {"status": "no-change"}
    async with app.store.transaction() as conn:
        final = await load_order(conn, order.code)
    assert final.refunded_total.amount == 7000
    assert {t.state for t in final.tickets} == {TicketState.REFUNDED}
    refund = (await app.http.get(started["refund_url"])).json()
    assert refund["status"] == "refunded" and refund["manual_reference"] == "BANK-7"
    assert (await _history(app, order.code)).count("refund-error") == 1
    again = await app.http.post(f"{started['refund_url']}/mark-refunded", json={"reference": "X"})
    assert again.status_code == 409 and again.json()["type"].endswith("/operation-closed")


async def test_retry_after_failure_uses_a_new_attempt(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, card="pm_card_refundFail")
    started = await request_refund(app, order.code, {"kind": "full", "reason": "event moved"})
    await _waiting_in_refund_error(app, started["refund_url"])
    finance_2 = await app.headers_for("finance-2", "finance")
    retried = await app.http.post(f"{started['refund_url']}/retry", headers=finance_2)
    assert retried.status_code == 200, retried.text
    assert retried.json()["attempt"] == 2
    await _waiting_in_refund_error(app, started["refund_url"], attempt=2)
    keys = {r.idempotency_key for r in stripe.request_log if r.method == "POST" and r.path == "/v1/refunds"}
    assert len(keys) == 2  # a new idempotency key per attempt
    assert len(stripe_refunds_for(stripe, order.payment.reference)) == 2
    assert len(await _finance_notices(app, 2)) == 2


async def test_manual_refund_confirmed_by_finance(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, method=PaymentMethod.INVOICE)
    preview = (await app.http.post(f"/orders/{order.code}/refunds/preview",
                                   json={"kind": "full", "reason": "invoice cancelled"})).json()
    assert preview["automatic"] is False and preview["processor"] == "manual"
    started = await request_refund(app, order.code, {"kind": "full", "reason": "invoice cancelled"})
    for _ in range(50):
        refund = (await app.http.get(started["refund_url"])).json()
        if refund["status"] == "awaiting-manual":
            break
        await asyncio.sleep(0.1)
    assert refund["status"] == "awaiting-manual"
    waiting = (await app.http.get(f"/operations/{started['operation_id']}")).json()
    assert waiting["status"] == "running" and "finance" in (waiting["details"] or ""), waiting
    empty = await app.http.post(f"{started['refund_url']}/mark-refunded", json={"reference": ""})
    assert empty.status_code == 422
    retry = await app.http.post(f"{started['refund_url']}/retry")
    assert retry.status_code == 409 and retry.json()["type"].endswith("/refund-not-retryable")
    done = await app.http.post(f"{started['refund_url']}/mark-refunded", json={"reference": "SEPA-77"},
                               headers=await app.headers_for("finance-9", "finance"))
    assert done.json()["status"] == "refunded" and done.json()["confirmed_by"] == "finance-9"
    assert stripe.refunds() == []
    result = await app.wait_operation(started["operation_id"])
    assert result["result"]["status"] == "refunded"


async def test_free_order_refund_completes_at_once(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, method=PaymentMethod.FREE)
    started = await request_refund(app, order.code, {"kind": "tickets", "ticket_ids": [order.tickets[1].id],
                                                     "reason": "cannot come"})
    done = await app.wait_operation(started["operation_id"])
    assert done["result"]["status"] == "refunded" and done["result"]["amount"] == 0
    async with app.store.transaction() as conn:
        after = await load_order(conn, order.code)
    assert [t.state for t in after.tickets] == [TicketState.VALID, TicketState.REFUNDED]


async def test_refusals_are_problems_and_change_nothing(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, tickets=2, policy=EventPolicy())
    code = order.code

    async def preview(body: dict[str, Any]) -> tuple[int, str]:
        resp = await app.http.post(f"/orders/{code}/refunds/preview", json=body)
        return resp.status_code, resp.json().get("type", "")

    too_much = {"kind": "amount", "amount": {"amount": 7001, "currency": "EUR"}, "reason": "too much"}
    assert (await preview(too_much))[1].endswith("/amount-exceeds-refundable")
    usd = {"kind": "amount", "amount": {"amount": 100, "currency": "USD"}, "reason": "wrong currency"}
    assert (await preview(usd))[1].endswith("/currency-mismatch")
    unknown = {"kind": "tickets", "ticket_ids": ["tkt_nope"], "reason": "no such ticket"}
    assert (await preview(unknown)) == (404, "https://ticketops.dev/problems/ticket-not-found")
    no_reason = {"kind": "full", "reason": ""}
    assert (await preview(no_reason))[0] == 422
    wrong_hash = await app.http.post(f"/orders/{code}/refunds", json={"kind": "full", "reason": "ok reason",
                                                                        "quote_hash": "0" * 64})
    assert wrong_hash.status_code == 409 and wrong_hash.json()["type"].endswith("/quote-mismatch")

    # A scanned ticket is refused unless the event allows it.
    from ticketing.states import ScanState
    from ticketing.store.orders import save_order

    async with app.store.transaction() as conn:
        current = await load_order(conn, code)
        used = current.tickets[0].model_copy(update={"scan_state": ScanState.SCANNED_IN})
        await save_order(conn, current, current.model_copy(update={"tickets": [used, *current.tickets[1:]]}), [])
    scanned = {"kind": "tickets", "ticket_ids": [order.tickets[0].id], "reason": "left early"}
    assert (await preview(scanned))[1].endswith("/ticket-used")
    # A dispute blocks refunds.
    async with app.store.transaction() as conn:
        current = await load_order(conn, code)
        disputed = current.model_copy(update={"payment": current.payment.model_copy(update={"dispute_open": True})})
        await save_order(conn, current, disputed, [])
    assert (await preview({"kind": "full", "reason": "dispute"}))[1].endswith("/dispute-open")
    assert stripe.refunds() == []
    assert await _history(app, code) == ["order-created"]


async def test_preview_then_order_changed_is_refused(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, tickets=3)
    body = {"kind": "tickets", "ticket_ids": [order.tickets[0].id], "reason": "first"}
    stale = (await app.http.post(f"/orders/{order.code}/refunds/preview", json=body)).json()["quote_hash"]
    other = await request_refund(app, order.code, {"kind": "tickets", "ticket_ids": [order.tickets[1].id],
                                                   "reason": "second"})
    await app.wait_operation(other["operation_id"])
    resp = await app.http.post(f"/orders/{order.code}/refunds", json={**body, "quote_hash": stale})
    assert resp.status_code == 409 and resp.json()["type"].endswith("/quote-mismatch")
    assert len(stripe_refunds_for(stripe, order.payment.reference)) == 1


async def test_concurrent_partial_refunds_cannot_exceed_the_total(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, tickets=2)  # refundable 70.00
    body = {"kind": "amount", "amount": {"amount": 5000, "currency": "EUR"}, "reason": "goodwill"}
    preview = (await app.http.post(f"/orders/{order.code}/refunds/preview", json=body)).json()
    confirmed = {**body, "quote_hash": preview["quote_hash"]}
    responses = await asyncio.gather(
        app.http.post(f"/orders/{order.code}/refunds", json=confirmed, headers={"Idempotency-Key": "a"}),
        app.http.post(f"/orders/{order.code}/refunds", json=confirmed, headers={"Idempotency-Key": "b"}),
    )
    outcomes = []
    for resp in responses:
        if resp.status_code == 202:
            outcomes.append(await app.wait_operation(resp.json()["operation_id"]))
        else:
            outcomes.append({"status": "refused", "error": resp.json()})
    statuses = sorted(o["status"] for o in outcomes)
    assert statuses in (["completed", "failed"], ["completed", "refused"]), outcomes
    refused = next(o for o in outcomes if o["status"] != "completed")
    error_type = refused["error"]["type"]
    assert error_type.endswith(("quote-mismatch", "amount-exceeds-refundable")), refused
    assert [r["amount"] for r in stripe_refunds_for(stripe, order.payment.reference)] == [5000]
    async with app.store.transaction() as conn:
        after = await load_order(conn, order.code)
    assert after.refunded_total.amount == 5000 and after.pending_refund_total.amount == 0


async def test_forged_and_replayed_webhooks(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, card="pm_card_pendingRefund")
    started = await request_refund(app, order.code, {"kind": "full", "reason": "refund it"})
    await app.wait_operation(started["operation_id"])
    forged = await app.http.post("/webhooks/stripe", content=b'{"id":"evt_x","type":"refund.updated"}',
                                 headers={"Stripe-Signature": "t=1,v1=deadbeef"})
    assert forged.status_code == 400 and forged.json()["type"].endswith("/webhook-signature-invalid")
    unsigned = await app.http.post("/webhooks/stripe", content=b"{}")
    assert unsigned.status_code == 400
    # Replay a genuine delivery: same body and signature as the stand-in sent.
    event = stripe.events("refund.updated")[-1]
    import json
    import time

    import stripe as stripe_sdk

    payload = json.dumps(event)
    ts = int(time.time())
    sig = stripe_sdk.WebhookSignature._compute_signature(f"{ts}.{payload}", stripe.config.webhook_secret)
    header = f"t={ts},v1={sig}"
    first = await app.http.post("/webhooks/stripe", content=payload, headers={"Stripe-Signature": header})
    again = await app.http.post("/webhooks/stripe", content=payload, headers={"Stripe-Signature": header})
    assert first.status_code == 200 and again.json() == {"status": "duplicate"}
    assert len(stripe_refunds_for(stripe, order.payment.reference)) == 1


async def test_succeeded_then_failed_later(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe)
    started = await request_refund(app, order.code, {"kind": "full", "reason": "customer request"})
    done = await app.wait_operation(started["operation_id"])
    assert done["result"]["status"] == "refunded"
    processor_id = stripe_refunds_for(stripe, order.payment.reference)[0]["id"]
    stripe.force_refund_failure(processor_id, reason="lost_or_stolen_card")
    for _ in range(100):
        refund = (await app.http.get(started["refund_url"])).json()
        if refund["status"] == "refund-error":
            break
        await asyncio.sleep(0.1)
    assert refund["status"] == "refund-error" and refund["failure_reason"] == "lost_or_stolen_card"
    async with app.store.transaction() as conn:
        after = await load_order(conn, order.code)
    assert after.refunded_total.amount == 0
    assert {t.state for t in after.tickets} == {TicketState.VALID}
    history = await _history(app, order.code)
    assert history.count("refund-error") == 1 and history.index("refund-error") > history.index("item-refunded")
    for _ in range(50):
        if any(m["To"] == "finance@ticketops.local" for m in app.sink.messages):
            break
        await asyncio.sleep(0.1)
    assert [m["To"] for m in app.sink.messages].count("finance@ticketops.local") == 1
    # The run had ended, so it refused the news and the webhook started the late-failure run.
    follow_up = (await app.http.get(f"/operations/{late_failure_workflow_id(refund['id'], 1)}")).json()
    assert follow_up["status"] == "running" and follow_up["workflow"] == "Refund", follow_up


async def test_failure_during_the_receipt_is_handled_by_the_running_refund(
    app: Harness, stripe: StripeServer
) -> None:
    """Issue 11's lost refund: the failure webhook arrives while the run sends the receipt (a slow relay).

    The run takes the news by update and acts on it before it ends; it used to buffer it and return
    `refunded`, while the webhook answered "signalled" and no late-failure run started.
    """
    order = await card_order(app, stripe)
    app.sink.defer_recipients.add("ada@example.com")  # greylisted: the run stays in its last step
    started = await request_refund(app, order.code, {"kind": "full", "reason": "customer request"})
    await refund_reaches(app, started["refund_url"], "refunded")
    processor_id = stripe_refunds_for(stripe, order.payment.reference)[0]["id"]
    stripe.force_refund_failure(processor_id, reason="expired_or_canceled_card")
    for _ in range(100):
        failed = [e["id"] for e in stripe.events("refund.failed")]
        if failed and stripe.webhook_deliveries().get(failed[-1]) == "delivered":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the stand-in never delivered refund.failed")
    app.sink.defer_recipients.discard("ada@example.com")  # the receipt goes on its next retry

    refund = await _waiting_in_refund_error(app, started["refund_url"])
    assert refund["failure_reason"] == "expired_or_canceled_card"
    # The original run took the news and owns the refund: no late-failure run was needed.
    no_follow_up = await app.http.get(f"/operations/{late_failure_workflow_id(refund['id'], 1)}")
    assert no_follow_up.status_code == 404, no_follow_up.text
    assert (await app.http.get(f"/operations/{started['operation_id']}")).json()["status"] == "running"
    async with app.store.transaction() as conn:
        after = await load_order(conn, order.code)
    assert after.refunded_total.amount == 0 and {t.state for t in after.tickets} == {TicketState.VALID}
    await app.sink.wait_for_messages(3, timeout=30)  # the receipt, finance's notice, then the buyer's notice
    buyer, finance = "ada@example.com", "finance@ticketops.local"
    assert sorted(m["To"] for m in app.sink.messages) == [buyer, buyer, finance]
    assert "did not go through" in str(app.sink.messages[-1]["Subject"])


@pytest.mark.slow
async def test_429_storm_every_refund_completes(app: Harness, stripe: StripeServer) -> None:
    orders = [await card_order(app, stripe, tickets=1) for _ in range(6)]
    stripe.set_rate_limit(2.0)
    started = [await request_refund(app, o.code, {"kind": "full", "reason": "storm"}) for o in orders]
    results = [await app.wait_operation(s["operation_id"], timeout=90) for s in started]
    assert [r["result"]["status"] for r in results] == ["refunded"] * 6
    assert any(r.status == 429 for r in stripe.request_log)
    assert sorted(r["amount"] for r in stripe.refunds()) == [3500] * 6
