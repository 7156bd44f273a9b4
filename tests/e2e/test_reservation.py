"""Reservations with a payment deadline end to end: API -> Reservation -> store -> SMTP sink, and its timers."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client

from devtools.stripe_server.server import StripeServer
from runtime.settings import ReservationConfig
from tests.builders import make_event, make_order
from tests.e2e.action_support import action, history, problem, stored
from tests.e2e.reservation_support import delivered, intent_paid, open_reservation, reserved_order
from tests.harness import Harness, running, seed
from ticketing.models import Order
from ticketing.signed_links import verify
from ticketing.states import OrderStatus
from ticketing.store.engine import Store
from ticketing.store.orders import load_ticket_types, load_time_slots

PAY_LINK = re.compile(r"/pay/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


@pytest_asyncio.fixture
async def quick(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    """Reminders 3 s and 1.5 s before the deadline."""
    overrides = {"reservations": ReservationConfig(reminder_hours=[3 / 3600, 1.5 / 3600])}
    async with running(temporal_client, store, tmp_path, queue_prefix, settings_overrides=overrides) as harness:
        yield harness


async def _seats(app: Harness, order: Order) -> tuple[int, int]:
    event_id = order.event_id
    async with app.store.transaction() as conn:
        types = {t.id: t.sold for t in await load_ticket_types(conn, event_id)}
        slots = {s.id: s.sold for s in await load_time_slots(conn, event_id)}
    return types[order.tickets[0].ticket_type_id], slots[order.tickets[0].time_slot_id or ""]


async def test_unpaid_reservation_is_reminded_then_expires_and_releases_its_seats(quick: Harness) -> None:
    app = quick
    order = await reserved_order(app)
    assert await _seats(app, order) == (2, 2)
    detail = (await app.http.get(f"/orders/{order.code}")).json()
    assert action(detail, "mark-paid")["enabled"] and action(detail, "extend-deadline")["enabled"]
    deadline = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    op = await open_reservation(app, order.code, deadline)
    due = (await app.http.get("/reservations", params={"within_hours": 1})).json()
    for _ in range(50):
        if any(r["order_code"] == order.code for r in due):
            break
        await asyncio.sleep(0.2)  # visibility is eventually consistent
        due = (await app.http.get("/reservations", params={"within_hours": 1})).json()
    assert any(r["order_code"] == order.code and r["operation_id"] == op for r in due), due

    done = await app.wait_operation(op, timeout=30)
    assert done["status"] == "completed", done
    assert (done["result"]["status"], done["result"]["reminders_sent"]) == ("expired", 2)
    reminders = app.sink.messages
    assert [m["To"] for m in reminders] == ["ada@example.com", "ada@example.com"]
    text = reminders[0].get_body(("plain",))
    assert text is not None
    token = PAY_LINK.search(text.get_content())
    assert token is not None
    assert verify(app.settings.signing_secret.get_secret_value(), "payment", token.group(1),
                  now=datetime.now(UTC) - timedelta(seconds=10))[0] == order.code

    after = await stored(app, order.code)
    assert (after.status.value, after.payment.status.value) == ("expired", "voided")
    assert {t.state.value for t in after.tickets} == {"invalid:cancelled"}
    assert await _seats(app, order) == (0, 0)
    kinds = [e.type for e in await history(app, order.code)]
    assert kinds.count("payment-reminder-sent") == 2
    assert kinds.index("reservation-deadline-set") < kinds.index("reservation-expired")
    problem(await app.http.post(f"/orders/{order.code}/reservation/paid", json={}), 409, "operation-closed")
    detail = (await app.http.get(f"/orders/{order.code}")).json()
    assert action(detail, "mark-paid")["reason_type"] == "order-expired"


async def test_paid_reservation_is_delivered_and_extension_moves_the_deadline(app: Harness) -> None:
    order = await reserved_order(app)
    deadline = (datetime.now(UTC) + timedelta(days=5)).replace(microsecond=0)
    op = await open_reservation(app, order.code, deadline)
    later = deadline + timedelta(days=3)
    earlier = {"deadline": (deadline - timedelta(days=1)).isoformat()}
    problem(await app.http.post(f"/orders/{order.code}/reservation/extend", json=earlier), 409, "deadline-not-later")
    extended = await app.http.post(f"/orders/{order.code}/reservation/extend", json={"deadline": later.isoformat()})
    assert extended.status_code == 200, extended.text
    assert datetime.fromisoformat(extended.json()["deadline"]) == later
    finance = await app.headers_for("finance-1", "finance")
    support = await app.headers_for("agent-7", "support")
    problem(await app.http.post(f"/orders/{order.code}/reservation/paid", json={}, headers=support), 403, "forbidden")
    paid = await app.http.post(f"/orders/{order.code}/reservation/paid", json={"reference": "INV-42"},
                               headers=finance)
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"
    done = await app.wait_operation(op)
    assert (done["result"]["status"], done["result"]["delivery"]) == ("paid", "sent")
    assert datetime.fromisoformat(done["result"]["deadline"]) == later
    after = await stored(app, order.code)
    assert (after.status.value, after.payment.status.value, after.payment.reference) == ("paid", "succeeded", "INV-42")
    (mail,) = app.sink.messages
    assert len([p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]) == 2
    kinds = [e.type for e in await history(app, order.code)]
    assert kinds[-4:] == ["reservation-deadline-set", "reservation-deadline-extended", "payment-received",
                          "tickets-sent"]
    assert (await history(app, order.code, "payment-received"))[0].actor == "finance-1"
    problem(await app.http.post(f"/orders/{order.code}/reservation/paid", json={}, headers=finance),
            409, "operation-closed")


async def test_reservation_refusals(app: Harness) -> None:
    paid_event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    paid = make_order(paid_event, types)
    await seed(app.store, paid_event, types, slots, [paid])
    problem(await app.http.post(f"/orders/{paid.code}/reservation", json={"days": 3}), 409, "order-paid")
    reserved = await reserved_order(app)
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    problem(await app.http.post(f"/orders/{reserved.code}/reservation", json={"deadline": past}), 409,
            "deadline-in-past")
    problem(await app.http.post(f"/orders/{reserved.code}/reservation", json={"deadline": "2030-01-01T00:00:00"}),
            422, "validation-error")
    problem(await app.http.post(f"/orders/{reserved.code}/reservation/extend",
                                json={"deadline": "2030-01-01T00:00:00Z"}), 409, "operation-closed")


async def test_stripe_payment_webhook_pays_the_reservation_once(stripe_app: Harness, stripe: StripeServer) -> None:
    app = stripe_app
    order = await reserved_order(app)
    op = await open_reservation(app, order.code, (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0))

    # Another amount than the order's: answered (never retried), logged, the reservation waits on.
    _, short_event = await intent_paid(stripe, order.code, order.payment.amount.amount - 100)
    await delivered(stripe, short_event)
    assert (await stored(app, order.code)).status is OrderStatus.RESERVED
    assert await history(app, order.code, "payment-received") == []

    intent_id, event_id = await intent_paid(stripe, order.code, order.payment.amount.amount)
    done = await app.wait_operation(op, timeout=30)
    assert (done["result"]["status"], done["result"]["delivery"]) == ("paid", "sent")
    after = await stored(app, order.code)
    assert (after.status.value, after.payment.status.value, after.payment.reference) == ("paid", "succeeded",
                                                                                           intent_id)
    (received,) = await history(app, order.code, "payment-received")
    assert (received.actor, received.data["reference"]) == ("processor", intent_id)
    (mail,) = app.sink.messages
    assert len([p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]) == 2

    # Stripe sends the event again: seen already, nothing happens twice.
    await delivered(stripe, event_id)
    stripe.resend_event(event_id)
    await delivered(stripe, event_id, attempts=2)
    await asyncio.sleep(0.3)
    assert len(await history(app, order.code, "payment-received")) == 1
    assert len(app.sink.messages) == 1


async def test_a_reservation_whose_order_is_cancelled_while_it_waits_ends_cancelled_not_failed(app: Harness) -> None:
    """An agent (or an event or time-slot cancellation) cancels the reserved order before its deadline: at
    the deadline the run ends `cancelled`, not failed for finance to chase, and nothing is released twice.
    (The default reminders are hours before the deadline, so none is due in this test's few seconds.)"""
    order = await reserved_order(app)
    deadline = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    op = await open_reservation(app, order.code, deadline)
    cancel = await app.http.post(f"/orders/{order.code}/cancel", json={"reason": "buyer called", "refund": False},
                                 headers={"Idempotency-Key": f"cancel-{uuid.uuid4().hex[:8]}"})
    assert cancel.status_code == 202, cancel.text
    assert (await app.wait_operation(cancel.json()["operation_id"]))["status"] == "completed"
    sent_by_then = len(app.sink.messages)  # the cancellation's email, awaited by its run
    assert await _seats(app, order) == (0, 0)

    done = await app.wait_operation(op, timeout=30)
    assert done["status"] == "completed", done
    assert (done["result"]["status"], done["result"]["reminders_sent"]) == ("cancelled", 0)
    after = await stored(app, order.code)
    assert (after.status.value, after.payment.status.value) == ("cancelled", "voided")
    assert await _seats(app, order) == (0, 0)  # released once, by the cancellation
    kinds = [e.type for e in await history(app, order.code)]
    assert "reservation-expired" not in kinds and "payment-reminder-sent" not in kinds
    assert len(app.sink.messages) == sent_by_then
    problem(await app.http.post(f"/orders/{order.code}/reservation/paid", json={}), 409, "operation-closed")
