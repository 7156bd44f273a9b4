"""Helpers for reservation tests: reserved orders, opening their reservation, paying them on the Stripe stand-in."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

from devtools.stripe_server.client import stripe_client
from devtools.stripe_server.server import StripeServer
from tests.builders import make_event, make_order
from tests.harness import Harness, seed
from ticketing.models import Order, PaymentMethod
from ticketing.states import OrderStatus


async def reserved_order(app: Harness, method: PaymentMethod = PaymentMethod.INVOICE, **kw: Any) -> Order:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    order = make_order(event, types, tickets=2, slot=slots[0].id, method=method, status=OrderStatus.RESERVED, **kw)
    await seed(app.store, event, types, slots, [order])
    return order


async def open_reservation(app: Harness, code: str, deadline: datetime) -> str:
    resp = await app.http.post(f"/orders/{code}/reservation", json={"deadline": deadline.isoformat()})
    assert resp.status_code == 202, resp.text
    op: str = resp.json()["operation_id"]
    return op


async def delivered(stripe: StripeServer, event_id: str, attempts: int = 1) -> None:
    """Until the stand-in delivered the event to the API `attempts` times."""
    for _ in range(200):
        if any(n >= attempts and s == "delivered" for _, n, s in stripe.delivery_attempts(event_id)):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(stripe.delivery_attempts(event_id))


async def intent_paid(stripe: StripeServer, code: str, amount: int) -> tuple[str, str]:
    """A card payment on the stand-in naming the order; (intent id, its payment_intent.succeeded event id)."""
    client = stripe_client(stripe.base_url, stripe.config.api_key)
    intent = await client.v1.payment_intents.create_async(params={
        "amount": amount, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True,
        "allowed_payment_method_types": ["card"], "metadata": {"order_code": code},
    })
    (event,) = [e for e in stripe.events("payment_intent.succeeded") if e["data"]["object"]["id"] == intent.id]
    return intent.id, str(event["id"])
