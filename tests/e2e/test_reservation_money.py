"""The money of reservations: refunds go back the way the payment came; a payment no order takes reaches finance.

API -> Reservation -> store, with the Stripe stand-in delivering signed webhooks to the API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.stripe_server.server import StripeServer
from tests.e2e.action_support import history, stored
from tests.e2e.refund_support import deliver_signed, refund_reaches, request_refund, stripe_refunds_for
from tests.e2e.reservation_support import delivered, intent_paid, open_reservation, reserved_order
from tests.harness import Harness
from ticketing.models import Order, PaymentMethod
from ticketing.states import OrderStatus


@pytest.fixture
def app(stripe_app: Harness) -> Harness:
    return stripe_app


def _days(n: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=n)).replace(microsecond=0)


async def _items(app: Harness, **params: str) -> list[dict[str, Any]]:
    resp = await app.http.get("/reconciliation/items", params={"class": "payment-unapplied", **params},
                              headers=await app.headers_for("finance-1", "finance"))
    assert resp.status_code == 200, resp.text
    found: list[dict[str, Any]] = resp.json()
    return found


async def _item_for(app: Harness, payment_id: str) -> list[dict[str, Any]]:
    return [i for i in await _items(app) if i["processor_side"]["payment_id"] == payment_id]


def _assert_unapplied(item: dict[str, Any], order: Order, payment_id: str, amount: int, refusal: str) -> None:
    assert (item["kind"], item["severity"], item["state"], item["suggested_action"]) == (
        "payment-unapplied", "high", "open", "refund-or-reinstate"
    )
    assert (item["order_code"], item["amount"]["amount"], item["amount"]["currency"]) == (order.code, amount, "EUR")
    assert item["processor"] == "stripe"
    assert item["processor_side"] == {"payment_id": payment_id, "amount": amount, "currency": "EUR"}
    assert item["ledger"]["refusal"] == refusal and item["ledger"]["reason"]
    assert item["ledger"]["order_amount"] == order.payment.amount.amount


async def test_stripe_paid_reservation_is_refunded_at_stripe_on_its_intent(app: Harness, stripe: StripeServer) -> None:
    order = await reserved_order(app, method=PaymentMethod.INVOICE, reference="INV-7")
    op = await open_reservation(app, order.code, _days(2))
    intent_id, _ = await intent_paid(stripe, order.code, order.payment.amount.amount)
    done = await app.wait_operation(op, timeout=30)
    assert done["result"]["status"] == "paid", done
    paid = await stored(app, order.code)
    assert (paid.payment.processor.value, paid.payment.method.value, paid.payment.reference) == (
        "stripe", "card", intent_id
    )
    (received,) = await history(app, order.code, "payment-received")
    assert (received.data["processor"], received.data["method"]) == ("stripe", "card")

    preview = (await app.http.post(f"/orders/{order.code}/refunds/preview",
                                   json={"kind": "full", "reason": "cannot come"})).json()
    assert (preview["processor"], preview["automatic"]) == ("stripe", True)
    started = await request_refund(app, order.code, {"kind": "full", "reason": "cannot come"})
    refund = await refund_reaches(app, started["refund_url"], "refunded")
    (at_stripe,) = stripe_refunds_for(stripe, intent_id)
    assert (at_stripe["amount"], at_stripe["status"]) == (7000, "succeeded")
    assert refund["processor_refund_id"] == at_stripe["id"]
    assert (await stored(app, order.code)).refunded_total.amount == 7000


async def test_finance_mark_paid_is_refunded_by_hand(app: Harness, stripe: StripeServer) -> None:
    # Reserved for a card, paid by bank transfer: finance's payment is manual, and so is its refund.
    order = await reserved_order(app, method=PaymentMethod.CARD, reference="pi_never_paid")
    op = await open_reservation(app, order.code, _days(2))
    paid = await app.http.post(f"/orders/{order.code}/reservation/paid", json={"reference": "SEPA-9"},
                               headers=await app.headers_for("finance-1", "finance"))
    assert paid.status_code == 200, paid.text
    await app.wait_operation(op, timeout=30)
    after = await stored(app, order.code)
    assert (after.payment.processor.value, after.payment.method.value, after.payment.reference) == (
        "manual", "invoice", "SEPA-9"
    )
    preview = (await app.http.post(f"/orders/{order.code}/refunds/preview",
                                   json={"kind": "full", "reason": "cannot come"})).json()
    assert (preview["processor"], preview["automatic"]) == ("manual", False)
    started = await request_refund(app, order.code, {"kind": "full", "reason": "cannot come"})
    await refund_reaches(app, started["refund_url"], "awaiting-manual")
    done = await app.http.post(f"{started['refund_url']}/mark-refunded", json={"reference": "SEPA-10"},
                               headers=await app.headers_for("finance-2", "finance"))
    assert done.json()["status"] == "refunded", done.text
    assert stripe.refunds() == []


async def test_payment_after_expiry_reaches_finance_once(app: Harness, stripe: StripeServer) -> None:
    order = await reserved_order(app)
    op = await open_reservation(app, order.code, (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0))
    assert (await app.wait_operation(op, timeout=30))["result"]["status"] == "expired"
    amount = order.payment.amount.amount
    intent_id, event_id = await intent_paid(stripe, order.code, amount)
    await delivered(stripe, event_id)
    (item,) = await _item_for(app, intent_id)
    _assert_unapplied(item, order, intent_id, amount, "order-expired")
    assert item["ledger"]["order_status"] == "expired"
    assert (await stored(app, order.code)).status is OrderStatus.EXPIRED
    open_items = await _items(app, state="open")
    assert item["id"] in {i["id"] for i in open_items}

    # Stripe redelivers the event, and sends another event for the same payment: still one item.
    stripe.resend_event(event_id)
    await delivered(stripe, event_id, attempts=2)
    (event,) = [e for e in stripe.events("payment_intent.succeeded") if e["id"] == event_id]
    again = {**event, "id": f"{event_id}_again"}
    assert await deliver_signed(app, stripe, again) == {"status": "order-expired"}
    assert [i["id"] for i in await _item_for(app, intent_id)] == [item["id"]]

    # Finance refunds it at Stripe and resolves the item; a later copy of the news does not reopen it.
    resolved = await app.http.post(f"/reconciliation/items/{item['id']}/resolve", json={"reason": "refunded at Stripe"},
                                   headers=await app.headers_for("finance-1", "finance"))
    assert resolved.status_code == 200, resolved.text
    await deliver_signed(app, stripe, {**event, "id": f"{event_id}_third"})
    (still,) = await _item_for(app, intent_id)
    assert still["state"] == "resolved"


async def test_payment_of_an_order_paid_already_reaches_finance(app: Harness, stripe: StripeServer) -> None:
    order = await reserved_order(app)
    op = await open_reservation(app, order.code, _days(2))
    paid = await app.http.post(f"/orders/{order.code}/reservation/paid", json={"reference": "INV-1"},
                               headers=await app.headers_for("finance-1", "finance"))
    assert paid.status_code == 200, paid.text
    await app.wait_operation(op, timeout=30)
    amount = order.payment.amount.amount
    intent_id, event_id = await intent_paid(stripe, order.code, amount)
    await delivered(stripe, event_id)
    (item,) = await _item_for(app, intent_id)
    _assert_unapplied(item, order, intent_id, amount, "order-paid")
    after = await stored(app, order.code)
    assert (after.payment.processor.value, after.payment.reference) == ("manual", "INV-1")  # finance's payment stays
    assert len(await history(app, order.code, "payment-received")) == 1


async def test_payment_of_another_amount_reaches_finance_and_the_reservation_waits_on(
    app: Harness, stripe: StripeServer
) -> None:
    order = await reserved_order(app)
    op = await open_reservation(app, order.code, _days(2))
    short = order.payment.amount.amount - 100
    short_id, short_event = await intent_paid(stripe, order.code, short)
    await delivered(stripe, short_event)
    (item,) = await _item_for(app, short_id)
    _assert_unapplied(item, order, short_id, short, "payment-amount-mismatch")
    assert (await stored(app, order.code)).status is OrderStatus.RESERVED

    # The right amount pays it; its own redelivery (after it took) is no finance item.
    intent_id, event_id = await intent_paid(stripe, order.code, order.payment.amount.amount)
    assert (await app.wait_operation(op, timeout=30))["result"]["status"] == "paid"
    await delivered(stripe, event_id)
    (event,) = [e for e in stripe.events("payment_intent.succeeded") if e["id"] == event_id]
    assert await deliver_signed(app, stripe, {**event, "id": f"{event_id}_again"}) == {"status": "paid"}
    assert await _item_for(app, intent_id) == []
    assert [i["id"] for i in await _item_for(app, short_id)] == [item["id"]]


async def test_payment_naming_an_unknown_order_reaches_finance(app: Harness, stripe: StripeServer) -> None:
    intent_id, event_id = await intent_paid(stripe, "ZZZZZZ", 1000)
    await delivered(stripe, event_id)
    (item,) = await _item_for(app, intent_id)
    assert (item["kind"], item["order_code"], item["ledger"]["refusal"], item["ledger"]["order_status"]) == (
        "payment-unapplied", "ZZZZZZ", "order-not-found", None
    )
