"""What a buyer reads, from the .eml files the SMTP sink kept: the ticket's own time, short codes,
"card ending 4242", a refund receipt whose lines add up, the organiser as sender with a reply-to,
the event in a bulk message, and a refund that failed after success told in a buyer's words.

Real parts throughout: API -> Temporal -> activities -> SMTP sink, refunds on the Stripe stand-in.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.client import Client

from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from runtime.settings import BlobConfig, RefundConfig
from tests.builders import make_event, make_order
from tests.e2e.bulk_support import wait_bulk
from tests.e2e.refund_support import card_order, request_refund, stripe_refunds_for
from tests.harness import Harness, running, seed
from ticketing.models import EventPolicy, Order

BRANDED = EventPolicy(
    organiser_name="Harbour Lights Live",
    brand_colour="#0f766e",
    reply_to="boxoffice@harbour.example",
    refund_booking_fees=True,
)


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    async with StripeServer(StripeServerConfig()) as server:
        yield server


@pytest_asyncio.fixture
async def app(
    temporal_client: Client, store: Any, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> AsyncIterator[Harness]:
    overrides = {
        "refunds": RefundConfig(poll_initial_seconds=0.5, poll_max_seconds=1.0),
        "blobs": BlobConfig(root=str(tmp_path / "blobs")),
    }
    async with running(
        temporal_client, store, tmp_path, queue_prefix, stripe=stripe, webhooks=True, settings_overrides=overrides
    ) as harness:
        yield harness


def _with_card(order: Order, last4: str) -> Order:
    return order.model_copy(update={"payment": order.payment.model_copy(update={"card_last4": last4})})


async def _eml(app: Harness, subject_part: str, timeout: float = 30.0) -> EmailMessage:
    """The one .eml in the sink's folder whose subject has `subject_part`, parsed from the file."""
    for _ in range(int(timeout * 10)):
        for path in sorted(app.sink.directory.glob("*.eml")):
            msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if subject_part in str(msg["Subject"]):
                assert isinstance(msg, EmailMessage)
                return msg
        await asyncio.sleep(0.1)
    raise AssertionError(f"no email with {subject_part!r} in its subject reached the sink")


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def _html(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


async def test_ticket_email_shows_the_slot_time_short_codes_and_the_organiser(app: Harness) -> None:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}", policy=BRANDED)
    late = slots[1]  # 03:00 later than the event's own start
    order = make_order(event, types, tickets=2, slot=late.id)
    await seed(app.store, event, types, slots, [order])
    resp = await app.http.post(f"/orders/{order.code}/resend", headers={"Idempotency-Key": "buyer-1"})
    assert resp.status_code == 202, resp.text
    assert (await app.wait_operation(resp.json()["operation_id"]))["status"] == "completed"

    msg = await _eml(app, "Your tickets for")
    text = _text(msg)
    when = re.search(r"When:\s+(.+)", text)
    assert when and when.group(1).endswith(f"{late.starts_at:%H:%M}"), text
    assert f"{event.starts_at:%H:%M}" != f"{late.starts_at:%H:%M}"  # the test can tell the two apart
    assert f"(ticket {order.code}-1)" in text and f"(ticket {order.code}-2)" in text
    assert "tkt_" not in text + _html(msg)
    assert [p.get_filename() for p in msg.iter_attachments()] == [
        f"ticket-{order.code}-1.pdf",
        f"ticket-{order.code}-2.pdf",
    ]
    assert parseaddr(str(msg["From"])) == ("Harbour Lights Live", "tickets@ticketops.local")
    assert msg["Reply-To"] == "boxoffice@harbour.example"
    assert "background:#0f766e" in _html(msg)


async def test_without_event_branding_the_ticket_office_defaults_apply(app: Harness) -> None:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    order = make_order(event, types, tickets=1)
    await seed(app.store, event, types, slots, [order])
    resp = await app.http.post(f"/orders/{order.code}/resend", headers={"Idempotency-Key": "buyer-2"})
    assert (await app.wait_operation(resp.json()["operation_id"]))["status"] == "completed"
    msg = await _eml(app, "Your tickets for")
    assert parseaddr(str(msg["From"])) == ("Ticket office", "tickets@ticketops.local")
    assert msg["Reply-To"] == "help@ticketops.local"


async def test_refund_receipt_lines_add_up_and_name_the_card(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, tickets=3, policy=BRANDED, booking_fee=250, service_fee=0)
    async with app.store.transaction() as conn:  # the card's digits, as the demo seed and import store them
        from ticketing.store.tables import orders as orders_table

        await conn.execute(orders_table.update().where(orders_table.c.code == order.code).values(card_last4="4242"))
    started = await request_refund(app, order.code, {"kind": "full", "reason": "customer request"})
    assert (await app.wait_operation(started["operation_id"]))["result"]["status"] == "refunded"

    text = _text(await _eml(app, "Refund of EUR 107.50"))
    assert "- Booking fee: EUR 2.50" in text
    tickets = re.findall(r"^- General admission ticket (\S+): EUR 35.00$", text, re.M)
    assert tickets == [f"{order.code}-1", f"{order.code}-2", f"{order.code}-3"]
    amounts = [int(a.replace(".", "")) for a in re.findall(r"^- .+: EUR (\d+\.\d\d)$", text, re.M)]
    assert sum(amounts) == 10750  # the lines add up to the total
    assert "Total refunded: EUR 107.50" in text
    assert "Refunded to:    card ending 4242" in text
    assert "stripe" not in text.lower() and "tkt_" not in text


async def test_bulk_message_carries_the_event_name_and_date(app: Harness) -> None:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}", policy=BRANDED)
    order = make_order(event, types, tickets=1)
    await seed(app.store, event, types, slots, [order])
    body = {"template": "message", "subject": "Doors open at 18:30", "body": "See you."}
    resp = await app.http.post(f"/events/{event.id}/deliveries", json=body)
    assert resp.status_code == 202, resp.text
    await wait_bulk(app, resp.json()["bulk_id"])
    msg = await _eml(app, "Doors open at 18:30")
    text = _text(msg)
    assert text.startswith(f"About {event.name}, ")
    assert f"{event.starts_at.year}, {event.starts_at:%H:%M}" in text.splitlines()[0]
    assert event.name in _html(msg)
    assert parseaddr(str(msg["From"]))[0] == "Harbour Lights Live"


async def test_refund_that_fails_later_is_told_to_the_buyer(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, tickets=2)  # fails when we say so: after the run has ended
    started = await request_refund(app, order.code, {"kind": "full", "reason": "customer request"})
    assert (await app.wait_operation(started["operation_id"]))["result"]["status"] == "refunded"
    await _eml(app, "Refund of")  # the buyer was told it succeeded
    processor_id = stripe_refunds_for(stripe, order.payment.reference)[0]["id"]
    stripe.force_refund_failure(processor_id, reason="expired_or_canceled_card")

    msg = await _eml(app, "did not go through")
    assert msg["To"] == "ada@example.com"
    text = _text(msg)
    assert "Your card has expired or was cancelled" in text
    assert "Your tickets are valid again" in text
    assert "expired_or_canceled_card" not in text and "refund-error" not in text
    await asyncio.sleep(1.0)  # a retried activity or a second reader must not send it twice
    told = [m for m in app.sink.messages if "did not go through" in str(m["Subject"])]
    assert len(told) == 1
