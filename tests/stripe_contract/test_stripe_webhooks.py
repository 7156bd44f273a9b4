"""Webhooks: signed with Stripe's scheme, verified by the SDK, retried on failure.

Real Stripe cannot reach an endpoint on this machine, so these run locally only.
"""

from __future__ import annotations

import pytest
import stripe

from .support import Backend, Delivery, WebhookReceiver, charge_id, paid_intent, wait_for


async def _deliveries(receiver: WebhookReceiver, object_id: str, count: int, backend: Backend) -> list[Delivery]:
    async def probe() -> list[Delivery]:
        return receiver.for_object(object_id)

    return await wait_for(probe, lambda found: len(found) >= count, timeout=5)


async def test_refund_webhooks_are_signed_and_verified(backend: Backend, receiver: WebhookReceiver) -> None:
    server = backend.server
    pi = await paid_intent(backend.client)
    server.set_webhook_url(receiver.url)
    secret = server.config.webhook_secret
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})

    (delivery,) = await _deliveries(receiver, refund.id, 1, backend)
    assert delivery.signature is not None and delivery.signature.startswith("t=")
    event = stripe.Webhook.construct_event(delivery.body, delivery.signature, secret)
    assert (event.type, event.data.object["id"], event.data.object["status"]) == (
        "refund.created",
        refund.id,
        "succeeded",
    )
    (charge_delivery,) = await _deliveries(receiver, charge_id(pi), 1, backend)
    charge_event = stripe.Webhook.construct_event(charge_delivery.body, charge_delivery.signature, secret)
    assert charge_event.type == "charge.refunded"
    assert charge_event.data.object["amount_refunded"] == 1000

    forged = delivery.body.replace('"amount": 1000', '"amount": 9000')
    assert forged != delivery.body
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(forged, delivery.signature, secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body, delivery.signature, "whsec_wrong")


async def test_refund_failure_is_delivered(backend: Backend, receiver: WebhookReceiver) -> None:
    server = backend.server
    pi = await paid_intent(backend.client, "pm_card_refundFail")
    server.set_webhook_url(receiver.url)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})

    found = await _deliveries(receiver, refund.id, 4, backend)
    events = [stripe.Webhook.construct_event(d.body, d.signature, server.config.webhook_secret) for d in found]
    assert sorted(e.type for e in events) == sorted(
        ["refund.created", "refund.failed", "refund.updated", "charge.refund.updated"]
    )
    failed = next(e for e in events if e.type == "refund.failed")
    assert failed.data.object["failure_reason"] == "expired_or_canceled_card"
    assert failed.data.previous_attributes["status"] == "succeeded"


async def test_failed_delivery_is_retried_with_backoff(backend: Backend, receiver: WebhookReceiver) -> None:
    server = backend.server
    pi = await paid_intent(backend.client)
    server.set_webhook_url(receiver.url)
    receiver.refused.clear()
    receiver.fail_next(3)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})

    (delivery,) = await _deliveries(receiver, refund.id, 1, backend)
    (charge_delivery,) = await _deliveries(receiver, charge_id(pi), 1, backend)
    ours = {delivery.event["id"], charge_delivery.event["id"]}
    assert len(receiver.refused) == 3 and set(receiver.refused) <= ours

    async def states() -> dict[str, str]:
        return server.webhook_deliveries()

    await wait_for(states, lambda d: all(d.get(e) == "delivered" for e in ours), timeout=5)
    assert len(receiver.for_object(refund.id)) == 1  # delivered once, not once per attempt
