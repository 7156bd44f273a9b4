"""Switches that make the processor disagree with the ledger, and the faults of issue 13.

Each switch produces what Stripe itself would show after that mishap; these
tests pin what a reconciler then sees through the public API. They need the
local server's hooks (real Stripe has none), and run once more through the
admin endpoint that another process uses.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import stripe

from devtools.stripe_server import StripeAdmin, stripe_client
from devtools.stripe_server.admin_client import StripeAdminError
from devtools.stripe_server.errors import StripeError

from .support import Backend, WebhookReceiver, charge_id, key, paid_intent, wait_for


async def _event_types(backend: Backend, refund_id: str, since: int, *, delivered: bool) -> list[str]:
    """The refund's event types listed under `delivery_success`, once deliveries in flight are done."""
    query: Any = {"created": {"gte": since}, "limit": 100, "delivery_success": delivered}

    async def probe() -> tuple[list[str], bool]:
        page = await backend.client.v1.events.list_async(params=query)
        in_flight = "pending" in backend.server.webhook_deliveries().values()
        return sorted(e.type for e in page.data if e.data.object["id"] == refund_id), in_flight

    found, _ = await wait_for(probe, lambda r: not r[1], timeout=5)
    return found


async def _received(receiver: WebhookReceiver, object_id: str, count: int = 1) -> list[str]:
    """Wait for `count` deliveries about the object; their event types."""

    async def probe() -> list[str]:
        return [d.event["type"] for d in receiver.for_object(object_id)]

    return await wait_for(probe, lambda found: len(found) >= count, timeout=5)


async def test_a_dashboard_refund_carries_no_key(backend: Backend, receiver: WebhookReceiver) -> None:
    server = backend.server
    server.set_webhook_url(receiver.url)
    pi = await paid_intent(backend.client, amount=2_000)

    made = server.dashboard_refund(pi.id, amount=800)
    foreign = server.dashboard_refund(pi.id, amount=200, metadata={"integration": "pos"})

    listed = await backend.client.v1.refunds.list_async(params={"payment_intent": pi.id})
    assert [(r.id, r.amount, r.metadata.to_dict() if r.metadata else None) for r in listed.data] == [
        (foreign["id"], 200, {"integration": "pos"}),
        (made["id"], 800, {}),
    ]
    (event,) = [e for e in server.events("refund.created") if e["data"]["object"]["id"] == made["id"]]
    assert event["request"]["idempotency_key"] is None
    assert await _received(receiver, made["id"]) == ["refund.created"]  # its webhook is sent as usual
    with pytest.raises(stripe.InvalidRequestError) as err:  # Stripe's limits hold
        await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 1_001})
    assert err.value.code == "amount_too_large"


async def test_a_silent_late_failure_shows_only_in_the_refund(backend: Backend, receiver: WebhookReceiver) -> None:
    server = backend.server
    server.set_webhook_url(receiver.url)
    pi = await paid_intent(backend.client)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    await _received(receiver, refund.id)

    server.fail_refund_silently(refund.id)

    now = await backend.client.v1.refunds.retrieve_async(refund.id)
    assert (now.status, now.failure_reason) == ("failed", "expired_or_canceled_card")
    txn = await backend.client.v1.balance_transactions.retrieve_async(str(now.failure_balance_transaction))
    assert (txn.type, txn.amount) == ("refund_failure", 1_000)
    # The events exist and look delivered (as if our endpoint said 200 and lost them) ...
    failure_events = ["charge.refund.updated", "refund.failed", "refund.updated"]
    assert await _event_types(backend, refund.id, pi.created, delivered=True) == [
        *failure_events[:1],
        "refund.created",
        *failure_events[1:],
    ]
    assert await _event_types(backend, refund.id, pi.created, delivered=False) == []
    await asyncio.sleep(0.2)
    # ... but nothing about the failure reached the endpoint.
    assert [d.event["type"] for d in receiver.for_object(refund.id)] == ["refund.created"]
    charge = await backend.client.v1.charges.retrieve_async(charge_id(pi))
    assert charge.amount_refunded == 0


async def test_a_dropped_webhook_stays_undelivered(backend: Backend, receiver: WebhookReceiver) -> None:
    server = backend.server
    server.set_webhook_url(receiver.url)
    pi = await paid_intent(backend.client, "pm_card_refundFail")
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    server.drop_webhooks(types=["refund.failed"], object_id=refund.id)

    server.force_refund_failure(refund.id)

    assert sorted(await _received(receiver, refund.id, 3)) == [
        "charge.refund.updated",
        "refund.created",
        "refund.updated",
    ]
    assert await _event_types(backend, refund.id, pi.created, delivered=False) == ["refund.failed"]


async def test_a_late_failure_can_drop_all_its_webhooks(backend: Backend, receiver: WebhookReceiver) -> None:
    server = backend.server
    server.set_webhook_url(receiver.url)
    pi = await paid_intent(backend.client)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    await _received(receiver, refund.id)

    server.force_refund_failure(refund.id, "lost_or_stolen_card", webhook="dropped")

    failure_events = {"charge.refund.updated", "refund.failed", "refund.updated"}
    # Under load the creation's own delivery may still be retried (its receiver answered slowly); the failure's
    # events are the point: all listed as undelivered, and none of them reached the endpoint.
    assert failure_events <= set(await _event_types(backend, refund.id, pi.created, delivered=False))
    assert not failure_events & {d.event["type"] for d in receiver.for_object(refund.id)}
    assert (await backend.client.v1.refunds.retrieve_async(refund.id)).failure_reason == "lost_or_stolen_card"


async def test_a_duplicate_under_a_forgotten_key(backend: Backend) -> None:
    server = backend.server
    pi = await paid_intent(backend.client, amount=3_000)
    idem = key()
    params: Any = {"payment_intent": pi.id, "amount": 1_000, "metadata": {"idempotency_key": idem}}
    first = await backend.client.v1.refunds.create_async(params=params, options={"idempotency_key": idem})

    twin = server.duplicate_refund(first.id)
    assert server.forget_idempotency_keys() >= 1
    again = await backend.client.v1.refunds.create_async(params=params, options={"idempotency_key": idem})

    assert len({first.id, twin["id"], again.id}) == 3  # paid three times under one key
    listed = await backend.client.v1.refunds.list_async(params={"payment_intent": pi.id})
    assert {r.metadata.to_dict().get("idempotency_key") if r.metadata else None for r in listed.data} == {idem}
    (created,) = [e for e in server.events("refund.created") if e["data"]["object"]["id"] == twin["id"]]
    assert created["request"]["idempotency_key"] == idem
    charge = await backend.client.v1.charges.retrieve_async(charge_id(pi))
    assert (charge.amount_refunded, charge.refunded) == (3_000, True)
    with pytest.raises(StripeError) as full:  # as on Stripe, nothing left to refund
        server.duplicate_refund(first.id)
    assert full.value.code == "charge_already_refunded"


async def test_scoped_counted_faults(backend: Backend) -> None:
    server = backend.server
    pi = await paid_intent(backend.client, amount=2_000)
    server.inject_faults(1.0, mode="rate_limited", method="POST", path="/v1/refunds", count=2)

    for _ in range(2):
        with pytest.raises(stripe.RateLimitError):
            await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 100})
        await backend.client.v1.refunds.list_async(params={"payment_intent": pi.id})  # reads unaffected
    await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 100})
    listed = await backend.client.v1.refunds.list_async(params={"payment_intent": pi.id})
    assert len(listed.data) == 1  # a 429 does nothing


async def test_a_slow_answer_past_the_timeout_still_acts(backend: Backend) -> None:
    server = backend.server
    pi = await paid_intent(backend.client)
    impatient = stripe_client(backend.base_url, backend.api_key, timeout=0.3)
    server.inject_faults(1.0, mode="slow", delay_seconds=1.0, method="POST", path="/v1/refunds", count=1)

    idem = key()
    with pytest.raises(stripe.APIConnectionError):
        await impatient.v1.refunds.create_async(params={"payment_intent": pi.id}, options={"idempotency_key": idem})
    with pytest.raises(stripe.APIError) as busy:  # still running: Stripe says so
        await backend.client.v1.refunds.create_async(
            params={"payment_intent": pi.id}, options={"idempotency_key": idem}
        )
    assert busy.value.http_status == 409
    assert busy.value.error is not None and busy.value.error.code == "idempotency_key_in_use"

    async def refunds() -> int:
        return len((await backend.client.v1.refunds.list_async(params={"payment_intent": pi.id})).data)

    assert await wait_for(refunds, lambda n: n == 1, timeout=5) == 1
    again = await backend.client.v1.refunds.create_async(
        params={"payment_intent": pi.id}, options={"idempotency_key": idem}
    )
    assert [r["id"] for r in server.refunds() if r["payment_intent"] == pi.id] == [again.id]


async def test_the_admin_endpoint_flips_the_same_switches(backend: Backend) -> None:
    server = backend.server
    admin = StripeAdmin(backend.base_url, backend.api_key)
    pi = await paid_intent(backend.client, amount=2_000)

    await admin.inject_faults(1.0, mode="after", method="POST", path="/v1/refunds", count=1)
    with pytest.raises(stripe.APIError):
        await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 500})
    (lost,) = server.refunds()[-1:]
    assert lost["payment_intent"] == pi.id  # acted, answer lost
    assert (await admin.state())["faults"]["count"] == 0

    dashboard = await admin.dashboard_refund(pi.id, amount=300, metadata={"by": "dashboard"})
    twin = await admin.duplicate_refund(lost["id"])
    await admin.drop_webhooks(None, types=["refund.*"], object_id=twin["id"])
    failed = await admin.fail_refund_silently(twin["id"])
    assert (dashboard["metadata"], twin["amount"], failed["status"]) == ({"by": "dashboard"}, 500, "failed")

    await admin.set_rate_limit(50)
    await admin.set_latency(1)
    await admin.advance_clock(60)
    state = await admin.state()
    assert (state["rate_limit_per_second"], state["latency_ms"], state["clock"]["offset_seconds"]) == (50, 1, 60)
    assert len(state["webhook_drops"]) == 1
    state = await admin.reset()
    assert (state["rate_limit_per_second"], state["latency_ms"], state["webhook_drops"]) == (None, 0, [])
    assert state["clock"]["offset_seconds"] == 0

    with pytest.raises(StripeAdminError) as bad:
        await admin.inject_faults(2.0)
    assert bad.value.status == 400
    with pytest.raises(StripeAdminError) as missing:
        await admin.force_refund_failure("re_missing")
    assert missing.value.status == 404
    async with httpx.AsyncClient() as http:
        anonymous = await http.post(f"{backend.base_url}/_admin/reset")
    assert anonymous.status_code == 401


async def test_a_held_refund_stays_pending_past_its_time(backend: Backend) -> None:
    server = backend.server
    pi = await paid_intent(backend.client, "pm_card_pendingRefund")
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    assert (refund.status, refund.pending_reason) == ("pending", "processing")

    held = server.hold_refund_pending(refund.id, "insufficient_funds")
    server.advance_clock(7 * 86_400)
    await asyncio.sleep(0.1)

    now = await backend.client.v1.refunds.retrieve_async(refund.id)
    assert (held["pending_reason"], now.status, now.pending_reason) == (
        "insufficient_funds",
        "pending",
        "insufficient_funds",
    )
    released = server.release_refund(refund.id)
    assert released["status"] == "succeeded" and "pending_reason" not in released
    with pytest.raises(ValueError, match="not pending"):
        server.hold_refund_pending(refund.id)


async def test_a_stray_balance_transaction_moves_money_no_refund_shows(backend: Backend) -> None:
    """A credit back on a refund that still succeeded, and a second debit: only the balance listing has them."""
    server = backend.server
    admin = StripeAdmin(backend.base_url, backend.api_key)
    pi = await paid_intent(backend.client, amount=2_000)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 700})

    credit = server.stray_balance_transaction(refund.id)
    debit = await admin.stray_balance_transaction(refund.id, type="refund", amount=-50)

    assert (credit["type"], credit["amount"], credit["source"]) == ("refund_failure", 700, refund.id)
    assert (debit["type"], debit["amount"], debit["currency"]) == ("refund", -50, refund.currency)
    now = await backend.client.v1.refunds.retrieve_async(refund.id)
    assert now.status == "succeeded" and now.to_dict().get("failure_balance_transaction") is None
    assert now.balance_transaction == refund.balance_transaction  # the refund shows its own debit only
    assert refund.balance_transaction not in (credit["id"], debit["id"])
    listed = await backend.client.v1.balance_transactions.list_async(params={"source": refund.id, "limit": 10})
    assert sorted((t.type, t.amount) for t in listed.data) == [
        ("refund", -700), ("refund", -50), ("refund_failure", 700)
    ]
    failures = await backend.client.v1.balance_transactions.list_async(params={"type": "refund_failure"})
    assert credit["id"] in {t.id for t in failures.data}

    with pytest.raises(StripeAdminError) as bad:
        await admin.stray_balance_transaction(refund.id, type="charge")
    assert bad.value.status == 400
    with pytest.raises(StripeAdminError) as missing:
        await admin.stray_balance_transaction("re_missing")
    assert missing.value.status == 404
