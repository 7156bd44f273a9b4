"""Event cancellation: mixed payment methods, a 429 storm, a known end state for every order,
and the processor's refund total equal to the ledger's."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from temporalio.client import Client

from devtools.stripe_server.client import stripe_client
from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from runtime.settings import BlobConfig, BulkConfig, RefundConfig
from tests.builders import make_event, make_order
from tests.e2e.bulk_support import wait_bulk
from tests.harness import Harness, running, seed
from ticketing.models import Contact, Order, PaymentMethod
from ticketing.money import Money
from ticketing.states import OrderStatus, TicketState
from ticketing.store.engine import Store
from ticketing.store.orders import load_event, load_order, load_ticket_types
from ticketing.store.tables import refunds as refunds_table


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    async with StripeServer(StripeServerConfig(pending_refund_settle_seconds=0.5)) as server:
        yield server


@pytest_asyncio.fixture
async def app(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> AsyncIterator[Harness]:
    overrides = {
        "blobs": BlobConfig(root=str(tmp_path / "blobs")),
        "bulk": BulkConfig(batch_size=4, window=2, refunds_per_second=20, emails_per_second=100),
        "refunds": RefundConfig(poll_initial_seconds=0.5, poll_max_seconds=1.0),
    }
    async with running(
        temporal_client, store, tmp_path, queue_prefix, stripe=stripe, webhooks=True, settings_overrides=overrides
    ) as harness:
        yield harness


async def _paid_by_card(stripe: StripeServer, order: Order, card: str) -> Order:
    client = stripe_client(stripe.base_url, stripe.config.api_key)
    intent = await client.v1.payment_intents.create_async(
        params={
            "amount": order.payment.amount.amount,
            "currency": "eur",
            "payment_method": card,
            "confirm": True,
            "allowed_payment_method_types": ["card"],
        }
    )
    return order.model_copy(update={"payment": order.payment.model_copy(update={"reference": intent.id})})


async def test_event_cancellation_mixed_methods_under_a_429_storm(app: Harness, stripe: StripeServer) -> None:
    event, types, slots = make_event(event_id="evt_called_off")
    orders: dict[str, Order] = {}

    def order(label: str, **kw: object) -> Order:
        made = make_order(event, types, **kw)  # type: ignore[arg-type]
        made = made.model_copy(update={"contact": Contact(name=label, email=f"{label}@example.com")})
        orders[label] = made
        return made

    for i in range(6):
        orders[f"visa{i}"] = await _paid_by_card(stripe, order(f"visa{i}"), "pm_card_visa")
    orders["pending"] = await _paid_by_card(stripe, order("pending"), "pm_card_pendingRefund")
    rejected = await _paid_by_card(stripe, order("rejected"), "pm_card_visa")
    orders["rejected"] = rejected
    client = stripe_client(stripe.base_url, stripe.config.api_key)
    elsewhere: Any = {"payment_intent": rejected.payment.reference}  # refunded outside ticketops
    await client.v1.refunds.create_async(params=elsewhere)
    order("invoice", method=PaymentMethod.INVOICE)
    order("free", method=PaymentMethod.FREE)
    order("unpaid", status=OrderStatus.RESERVED)
    await seed(app.store, event, types, slots, list(orders.values()))
    stripe.set_rate_limit(4.0)  # below our configured 20/s: a storm of 429s

    resp = await app.http.post(f"/events/{event.id}/cancel", json={"reason": "the show was called off"})
    assert resp.status_code == 202, resp.text
    done = await wait_bulk(app, resp.json()["bulk_id"], timeout=120)
    assert done["status"] == "completed"
    assert any(r.status == 429 for r in stripe.request_log)

    report = (await app.http.get(f"/bulk/{done['bulk_id']}/report.csv")).text
    outcome = {r["recipient_or_order"]: (r["status"], r["reason"]) for r in csv.DictReader(io.StringIO(report))}
    code = {label: o.code for label, o in orders.items()}
    assert {outcome[code[f"visa{i}"]][0] for i in range(6)} == {"refunded"}
    assert outcome[code["pending"]][0] == "refund-pending"
    assert outcome[code["rejected"]][0] == "refund-error" and "charge_already_refunded" in outcome[code["rejected"]][1]
    assert outcome[code["invoice"]][0] == "manual-refund-pending"
    assert outcome[code["free"]] == ("cancelled", "nothing-to-refund")
    assert outcome[code["unpaid"]] == ("cancelled", "nothing was paid")

    # Every order is cancelled, its tickets invalid, its seats back; the event takes no more sales.
    async with app.store.transaction() as conn:
        final = {label: await load_order(conn, c) for label, c in code.items()}
        assert (await load_event(conn, event.id)).cancelled
        assert {t.sold for t in await load_ticket_types(conn, event.id)} == {0}
    assert {o.status for o in final.values()} == {OrderStatus.CANCELLED}
    assert {t.state for o in final.values() for t in o.tickets} == {TicketState.CANCELLED}
    # Buyers were told first: one notice per order.
    notices = [m for m in app.sink.messages if "cancel" in m["Subject"].lower()]
    assert sorted(m["To"] for m in notices) == sorted(f"{label}@example.com" for label in orders)

    # The pending refund is confirmed by its follow-up run; the processor and the ledger agree.
    for _ in range(100):
        async with app.store.transaction() as conn:
            if (await load_order(conn, code["pending"])).refunded_total.amount > 0:
                break
        await asyncio.sleep(0.1)
    await _assert_processor_matches_ledger(app, stripe, exclude=rejected.payment.reference)
    # Its Refund run (the hand-over) names the order and the amount in the Web UI's list.
    async with app.store.transaction() as conn:
        handed = (
            await conn.execute(sa.select(refunds_table).where(refunds_table.c.order_code == code["pending"]))
        ).one()
    desc = await app.client.get_workflow_handle(handed.workflow_id).describe()
    amount = Money(amount=handed.amount, currency=handed.currency).display()
    summary = await desc.static_summary()
    assert summary and summary.startswith(f"Refund {amount} on order {code['pending']} ("), summary
    assert "handed over by event cancellation" in summary
    attrs = {pair.key.name: pair.value for pair in desc.typed_search_attributes.search_attributes}
    assert attrs["OrderId"] == code["pending"] and attrs["RefundAmount"] == handed.amount
    assert attrs["EventId"] == event.id and attrs["RefundCurrency"] == handed.currency

    # A re-run retries only what failed: the rejected order, once more, and nothing else.
    posts_before = [r for r in stripe.request_log if r.method == "POST" and r.path == "/v1/refunds"]
    retry = await app.http.post(f"/bulk/{done['bulk_id']}/retry-failed")
    assert retry.status_code == 202, retry.text
    again = await wait_bulk(app, retry.json()["bulk_id"], timeout=60)
    assert again["counts"] == {"refund-error": 1}
    posts_after = [r for r in stripe.request_log if r.method == "POST" and r.path == "/v1/refunds"]
    assert len({r.idempotency_key for r in posts_after} - {r.idempotency_key for r in posts_before}) == 1
    again_cancel = await app.http.post(f"/events/{event.id}/cancel", json={"reason": "again"})
    assert again_cancel.status_code == 409 and again_cancel.json()["type"].endswith("/event-already-cancelled")


async def _assert_processor_matches_ledger(app: Harness, stripe: StripeServer, *, exclude: str | None) -> None:
    at_stripe = sum(
        r["amount"]
        for r in stripe.refunds()
        if r["status"] in ("succeeded", "pending") and r["payment_intent"] != exclude
    )
    async with app.store.transaction() as conn:
        rows = (
            await conn.execute(
                sa.select(refunds_table.c.amount, refunds_table.c.status).where(refunds_table.c.processor == "stripe")
            )
        ).all()
    in_ledger = sum(r.amount for r in rows if r.status in ("refunded", "confirming-refund", "refunding"))
    assert at_stripe == in_ledger > 0


async def test_an_order_that_cannot_be_cancelled_is_reported_and_the_rest_go_on(
    app: Harness, stripe: StripeServer
) -> None:
    """One order refused by policy (a ticket in transfer) fails alone; a re-run cancels it once it is free."""
    event, types, slots = make_event(event_id="evt_transfer")
    orders = [await _paid_by_card(stripe, make_order(event, types, tickets=1), "pm_card_visa") for _ in range(4)]
    stuck = orders[2]
    stuck = stuck.model_copy(update={"tickets": [stuck.tickets[0].model_copy(update={"in_transfer": True})]})
    orders[2] = stuck
    await seed(app.store, event, types, slots, orders)

    resp = await app.http.post(f"/events/{event.id}/cancel", json={"reason": "called off", "notify": False})
    assert resp.status_code == 202, resp.text
    done = await wait_bulk(app, resp.json()["bulk_id"], timeout=60)
    assert done["status"] == "completed" and done["counts"] == {"refunded": 3, "failed": 1}, done
    report = (await app.http.get(f"/bulk/{done['bulk_id']}/report.csv")).text
    outcome = {r["recipient_or_order"]: (r["status"], r["reason"]) for r in csv.DictReader(io.StringIO(report))}
    assert outcome[stuck.code][0] == "failed" and outcome[stuck.code][1].startswith("ticket-in-transfer: ")
    async with app.store.transaction() as conn:
        untouched = await load_order(conn, stuck.code)
    assert untouched.status is OrderStatus.PAID and untouched.refunded_total.amount == 0
    assert untouched.tickets[0].state is TicketState.VALID
    created = {r.idempotency_key for r in stripe.request_log if r.method == "POST" and r.path == "/v1/refunds"}
    assert len(created) == 3  # nothing was sent to the processor for the refused order

    async with app.store.transaction() as conn:  # the transfer is finished or called off
        await conn.execute(sa.text("UPDATE tickets SET in_transfer = false WHERE order_code = :c"), {"c": stuck.code})
    retry = await app.http.post(f"/bulk/{done['bulk_id']}/retry-failed")
    again = await wait_bulk(app, retry.json()["bulk_id"], timeout=60)
    assert again["counts"] == {"refunded": 1}
    async with app.store.transaction() as conn:
        assert (await load_order(conn, stuck.code)).status is OrderStatus.CANCELLED
