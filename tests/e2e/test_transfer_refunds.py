"""Transfers and refunds end to end: a voluntary refund keeps a ticket transferred away paid (its replacement is
valid); an event cancellation refunds the payer for every ticket at Stripe and cancels the replacement.

API -> TransferTicket / Refund / EventCancellation -> store, Stripe stand-in over HTTP, SMTP sink.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from devtools.stripe_server.server import StripeServer
from tests.e2e.action_support import action, problem, stored
from tests.e2e.bulk_support import wait_bulk
from tests.e2e.refund_support import card_order, refund_reaches, request_refund, stripe_refunds_for
from tests.e2e.transfer_support import offer_token, start_transfer
from tests.harness import Harness
from ticketing.models import Order
from ticketing.states import OrderStatus, TicketState


@pytest.fixture
def app(stripe_app: Harness) -> Harness:
    return stripe_app


@pytest_asyncio.fixture
async def anon(app: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """The recipient: no credentials, only the link."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.extra["app"]), base_url="http://api") as c:
        yield c


async def _given_away(app: Harness, stripe: StripeServer, anon: httpx.AsyncClient) -> tuple[Order, Order]:
    """A card order of two tickets whose first was transferred and accepted; (giver's order, recipient's order)."""
    order = await card_order(app, stripe, tickets=2, starts_at=datetime.now(UTC) + timedelta(days=30))
    started = await start_transfer(app, order)
    accepted = await anon.post(f"/transfers/{await offer_token(app)}/accept")
    assert accepted.status_code == 200, accepted.text
    done = await app.wait_operation(started["operation_id"])
    assert done["result"]["status"] == "accepted", done
    return await stored(app, order.code), await stored(app, done["result"]["new_order_code"])


async def _preview(app: Harness, code: str, body: dict[str, Any]) -> httpx.Response:
    return await app.http.post(f"/orders/{code}/refunds/preview", json=body)


async def test_a_voluntary_refund_never_pays_back_a_ticket_transferred_away(
    app: Harness, stripe: StripeServer, anon: httpx.AsyncClient
) -> None:
    giver, recipient = await _given_away(app, stripe, anon)
    gone, left = giver.tickets
    assert gone.state is TicketState.TRANSFERRED
    detail = (await app.http.get(f"/orders/{giver.code}")).json()
    assert action(detail, "refund")["enabled"] is True  # the ticket left can be refunded

    problem(await _preview(app, giver.code, {"kind": "tickets", "ticket_ids": [gone.id], "reason": "cannot come"}),
            409, "ticket-transferred")
    quote = (await _preview(app, giver.code, {"kind": "full", "reason": "cannot come"})).json()
    assert quote["amount"]["amount"] == 3500
    assert [t["ticket_id"] for t in quote["tickets"]] == [left.id]
    assert [(k["ticket_id"], k["amount"]["amount"], k["reason_type"]) for k in quote["kept"]] == [
        (gone.id, 3500, "ticket-transferred")
    ]
    problem(await _preview(app, giver.code, {"kind": "amount", "amount": {"amount": 3600, "currency": "EUR"},
                                             "reason": "goodwill"}), 409, "amount-exceeds-refundable")

    started = await request_refund(app, giver.code, {"kind": "full", "reason": "cannot come"})
    await refund_reaches(app, started["refund_url"], "refunded")
    assert [(r["amount"], r["status"]) for r in stripe_refunds_for(stripe, giver.payment.reference)] == [
        (3500, "succeeded")
    ]
    after = await stored(app, giver.code)
    assert (after.ticket(left.id).state, after.ticket(gone.id).state) == (TicketState.REFUNDED, TicketState.TRANSFERRED)
    assert after.status is OrderStatus.PAID and after.refunded_total.amount == 3500
    theirs = await stored(app, recipient.code)
    assert theirs.tickets[0].is_valid  # the recipient still goes to the show; their ticket is paid for

    detail = (await app.http.get(f"/orders/{giver.code}")).json()
    assert (action(detail, "refund")["enabled"], action(detail, "refund")["reason_type"]) == (
        False, "ticket-transferred"
    )
    assert action(detail, "request-return")["reason_type"] == "ticket-transferred"
    problem(await _preview(app, giver.code, {"kind": "full", "reason": "again"}), 409, "ticket-transferred")


async def test_event_cancellation_refunds_every_ticket_and_cancels_the_replacement(
    app: Harness, stripe: StripeServer, anon: httpx.AsyncClient
) -> None:
    giver, recipient = await _given_away(app, stripe, anon)
    resp = await app.http.post(f"/events/{giver.event_id}/cancel", json={"reason": "the show was called off"})
    assert resp.status_code == 202, resp.text
    done = await wait_bulk(app, resp.json()["bulk_id"], timeout=90)
    assert done["status"] == "completed" and done["counts"] == {"refunded": 1, "cancelled": 1}, done

    # The payer gets everything back, the transferred ticket and the fees included (the show is off).
    (refund,) = stripe_refunds_for(stripe, giver.payment.reference)
    assert (refund["amount"], refund["status"]) == (giver.payment.amount.amount, "succeeded")
    after = await stored(app, giver.code)
    assert after.refunded_total == giver.payment.amount and after.refundable_total.is_zero
    theirs = await stored(app, recipient.code)
    assert theirs.status is OrderStatus.CANCELLED
    assert {t.state for t in theirs.tickets} == {TicketState.CANCELLED}
    scan = (await app.http.post("/scan", json={"barcode": theirs.tickets[0].barcode})).json()
    assert scan["result"] == "rejected"
