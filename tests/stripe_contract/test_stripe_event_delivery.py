"""Events remember their webhook delivery; retries follow Stripe's live schedule.

`delivery_success=false` lists events still pending or failed at an endpoint
(what a reconciler sweeps); `pending_webhooks` counts endpoints not yet
reached. Real Stripe cannot reach an endpoint on this machine, so tests that
need one are local; the filter shapes also run against Stripe test mode.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import stripe

from devtools.stripe_server import StripeServer, StripeServerConfig, stripe_client
from devtools.stripe_server.webhooks import retry_delay

from .support import Backend, WebhookReceiver, paid_intent, wait_for

DAY = 86_400.0


async def _events_about(backend: Backend, object_id: str, since: int, **params: Any) -> list[stripe.Event]:
    query: Any = {"created": {"gte": since}, "limit": 100, **params}
    page = await backend.client.v1.events.list_async(params=query)
    return [e for e in page.data if e.data.object["id"] == object_id]


async def test_events_are_filtered_by_types_and_wildcard(backend: Backend) -> None:
    pi = await paid_intent(backend.client)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})

    async def by_types() -> list[stripe.Event]:
        return await _events_about(backend, refund.id, pi.created, types=["refund.created", "refund.failed"])

    found = await wait_for(by_types, bool, timeout=backend.settle_timeout, interval=backend.poll_interval)
    wildcard = await _events_about(backend, refund.id, pi.created, type="refund.*")
    charges = await _events_about(backend, pi.id, pi.created, type="charge.*")

    assert [e.type for e in found] == ["refund.created"]
    assert "refund.created" in {e.type for e in wildcard} and all(e.type.startswith("refund.") for e in wildcard)
    assert charges == []  # payment_intent events are not charge.* events


async def test_delivery_success_separates_delivered_from_undelivered(
    backend: Backend, receiver: WebhookReceiver
) -> None:
    server = backend.server
    server.set_webhook_url(receiver.url)
    pi = await paid_intent(backend.client, amount=2_000)
    delivered = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 500})
    server.drop_webhooks(types=["refund.created"])
    dropped = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 500})

    async def delivered_ok() -> list[stripe.Event]:
        return await _events_about(backend, delivered.id, pi.created, delivery_success=True)

    (ok,) = await wait_for(delivered_ok, bool, timeout=5)
    assert ok.pending_webhooks == 0
    assert await _events_about(backend, delivered.id, pi.created, delivery_success=False) == []
    (lost,) = await _events_about(backend, dropped.id, pi.created, delivery_success=False)
    assert (lost.type, lost.pending_webhooks) == ("refund.created", 1)
    assert (await backend.client.v1.events.retrieve_async(lost.id)).pending_webhooks == 1
    assert receiver.for_object(dropped.id) == []
    assert server.webhook_deliveries()[lost.id] == "failed"


async def test_a_resent_event_is_delivered_once_under_its_own_id(backend: Backend, receiver: WebhookReceiver) -> None:
    server = backend.server
    server.set_webhook_url(receiver.url)
    pi = await paid_intent(backend.client)
    server.drop_webhooks(types=["refund.created"])
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    (lost,) = await _events_about(backend, refund.id, pi.created, delivery_success=False)

    server.resend_event(lost.id)

    async def got() -> list[str]:
        return [d.event["id"] for d in receiver.for_object(refund.id)]

    assert await wait_for(got, bool, timeout=5) == [lost.id]
    await wait_for(
        lambda: _events_about(backend, refund.id, pi.created, delivery_success=False), lambda e: e == [], timeout=5
    )


def test_the_retry_schedule_backs_off_for_three_days() -> None:
    config = StripeServerConfig()
    delays: list[float] = []
    age = 0.0
    while (delay := retry_delay(config, len(delays) + 1, age)) is not None:
        delays.append(delay)
        age += delay
    assert delays[:4] == [60, 120, 240, 480]
    assert max(delays) == 8 * 3600
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert 2.5 * DAY < age <= 3 * DAY
    assert 15 <= len(delays) + 1 <= 20  # attempts, the first one included
    # The time scale compresses the same schedule.
    fast = StripeServerConfig(webhook_retry_time_scale=1 / 8640)
    assert retry_delay(fast, 1, 0.0) == pytest.approx(60 / 8640)
    assert retry_delay(fast, 30, 29.99) is None
    assert retry_delay(StripeServerConfig(webhook_max_attempts=3), 3, 0.0) is None


@pytest_asyncio.fixture
async def frozen() -> AsyncIterator[StripeServer]:
    async with StripeServer(StripeServerConfig(tick_seconds=0.01)) as server:
        server.set_clock(frozen_at=1_800_000_000.0)
        yield server


async def test_retries_follow_the_schedule_on_the_account_clock(
    frozen: StripeServer, receiver: WebhookReceiver
) -> None:
    """Live-mode timing, driven by the account's clock: no retry before it is due, none after three days."""
    client = stripe_client(frozen.base_url, frozen.config.api_key)
    pi = await paid_intent(client)
    frozen.set_webhook_url(receiver.url)
    receiver.fail_next(10_000)
    refund = await client.v1.refunds.create_async(params={"payment_intent": pi.id})
    (created,) = [e for e in frozen.events("refund.created") if e["data"]["object"]["id"] == refund.id]

    async def attempts() -> int:
        return frozen.delivery_attempts(created["id"])[0][1]

    try:
        await wait_for(attempts, lambda n: n == 1, timeout=5)
        elapsed = 0.0
        made = 1
        while (delay := retry_delay(frozen.config, made, elapsed)) is not None:
            frozen.advance_clock(delay - 1)
            await asyncio.sleep(0.05)  # five ticks of the background task
            assert await attempts() == made, f"attempt {made + 1} came before its {delay} s"
            frozen.advance_clock(1)
            made += 1
            await wait_for(attempts, lambda n: n == made, timeout=5)  # noqa: B023
            elapsed += delay
        frozen.advance_clock(DAY)
        await wait_for(lambda: _state(frozen, created["id"]), lambda s: s == "failed", timeout=5)
        assert await attempts() == made
        assert 15 <= made <= 20
        assert receiver.for_object(refund.id) == []
    finally:
        receiver.fail_next(0)


async def _state(server: StripeServer, event_id: str) -> str:
    return server.webhook_deliveries()[event_id]
