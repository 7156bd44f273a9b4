"""Helpers for refund tests: card orders with real payment intents on the Stripe stand-in."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import stripe as stripe_sdk
from temporalio.testing import WorkflowEnvironment

from devtools.stripe_server.client import stripe_client
from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from runtime.settings import RefundConfig
from tests.builders import make_event, make_order
from tests.harness import Harness, running, seed
from ticketing.models import EventPolicy, Order, PaymentMethod
from ticketing.roles import Role
from ticketing.store.engine import Store

# A pending refund that never settles by itself: Stripe stays silent until a test releases or fails it.
NEVER_SETTLES = StripeServerConfig(pending_refund_settle_seconds=10**7)


@contextlib.asynccontextmanager
async def time_skipped_app(
    env: WorkflowEnvironment, store: Store, tmp_path: Path, prefix: str, stripe: StripeServer,
    refunds: RefundConfig, *, webhooks: bool = False,
) -> AsyncIterator[Harness]:
    """The API and workers on the time-skipping server, so a refund's long timers pass in seconds."""
    async with running(
        env.client, store, tmp_path, prefix, stripe=stripe, webhooks=webhooks, settings_overrides={"refunds": refunds}
    ) as harness:
        yield harness


async def card_order(
    app: Harness,
    stripe: StripeServer,
    *,
    card: str = "pm_card_visa",
    tickets: int = 2,
    policy: EventPolicy | None = None,
    method: PaymentMethod = PaymentMethod.CARD,
    starts_at: datetime | None = None,
    **kw: Any,
) -> Order:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}", policy=policy)
    if starts_at is not None:  # the builders' event has started by now; some flows need one still ahead
        event = event.model_copy(update={"starts_at": starts_at})
    order = make_order(event, types, tickets=tickets, method=method, **kw)
    if method in (PaymentMethod.CARD, PaymentMethod.WALLET):
        order = await paid_by_card(stripe, order, card)
    await seed(app.store, event, types, slots, [order])
    return order


async def paid_by_card(stripe: StripeServer, order: Order, card: str = "pm_card_visa") -> Order:
    """The order with the reference of a payment intent the stand-in confirmed for its amount."""
    client = stripe_client(stripe.base_url, stripe.config.api_key)
    intent = await client.v1.payment_intents.create_async(
        params={
            "amount": order.payment.amount.amount,
            "currency": order.currency.lower(),
            "payment_method": card,
            "confirm": True,
            "allowed_payment_method_types": ["card"],
        }
    )
    return order.model_copy(update={"payment": order.payment.model_copy(update={"reference": intent.id})})


async def request_refund(
    app: Harness, code: str, body: dict[str, Any], *, key: str | None = None, actor: str = "finance-1"
) -> dict[str, Any]:
    """Preview, then confirm with the quote's hash, as an agent does."""
    preview = await app.http.post(f"/orders/{code}/refunds/preview", json=body)
    assert preview.status_code == 200, preview.text
    headers = await app.headers_for(actor, Role.FINANCE)
    if key:
        headers["Idempotency-Key"] = key
    resp = await app.http.post(
        f"/orders/{code}/refunds", json={**body, "quote_hash": preview.json()["quote_hash"]}, headers=headers
    )
    assert resp.status_code == 202, resp.text
    return {**resp.json(), "quote_hash": preview.json()["quote_hash"]}


def stripe_refunds_for(stripe: StripeServer, payment_intent: str | None) -> list[dict[str, Any]]:
    return [r for r in stripe.refunds() if r.get("payment_intent") == payment_intent]


async def deliver_signed(app: Harness, stripe: StripeServer, event: dict[str, Any]) -> dict[str, Any]:
    """POST an event to our webhook endpoint signed as the stand-in signs it."""
    payload = json.dumps(event)
    ts = int(time.time())
    sig = stripe_sdk.WebhookSignature._compute_signature(f"{ts}.{payload}", stripe.config.webhook_secret)
    resp = await app.http.post("/webhooks/stripe", content=payload, headers={"Stripe-Signature": f"t={ts},v1={sig}"})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def refund_reaches(app: Harness, refund_url: str, status: str) -> dict[str, Any]:
    """Poll the refund until it is in `status`."""
    for _ in range(300):
        refund: dict[str, Any] = (await app.http.get(refund_url)).json()
        if refund["status"] == status:
            return refund
        await asyncio.sleep(0.1)
    raise AssertionError(f"the refund never reached {status}: {refund}")
