"""Ticket transfer end to end: API -> TransferTicket -> store -> SMTP sink -> link -> gate."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from temporalio.client import Client

from runtime.settings import TransferConfig
from tests.builders import make_event, make_order
from tests.documents.qr import decode_qr_payloads_from_pdf
from tests.e2e.action_support import action, history, problem, stored
from tests.e2e.transfer_support import RECIPIENT, offer_token, start_transfer
from tests.harness import Harness, running, seed
from ticketing.models import EventPolicy, Order
from ticketing.signed_links import sign
from ticketing.states import ScanState
from ticketing.store.engine import Store
from ticketing.store.orders import load_order, save_order


@pytest_asyncio.fixture
async def anon(app: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """The recipient: no credentials, only the link."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.extra["app"]), base_url="http://api") as c:
        yield c


async def _seeded(app: Harness, *, starts_in: timedelta = timedelta(days=30), **policy: Any) -> Order:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}", policy=EventPolicy(**policy))
    event = event.model_copy(update={"starts_at": datetime.now(UTC) + starts_in})
    order = make_order(event, types, tickets=2, slot=slots[0].id)
    await seed(app.store, event, types, slots, [order])
    return order


async def _until(check: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout * 10)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def test_recipient_accepts_and_gets_a_new_ticket_on_their_own_order(
    app: Harness, anon: httpx.AsyncClient
) -> None:
    order = await _seeded(app)
    given = order.tickets[0]
    detail = (await app.http.get(f"/orders/{order.code}")).json()
    assert action(detail, "transfer")["enabled"] is True
    started = await start_transfer(app, order, key="tr-1")
    token = await offer_token(app)
    during = await stored(app, order.code)
    assert during.ticket(given.id).in_transfer
    gate = (await app.http.post("/scan", json={"barcode": given.barcode})).json()
    assert (gate["result"], gate["reason_type"]) == ("rejected", "in-transfer")
    assert action((await app.http.get(f"/orders/{order.code}")).json(), "refund")["reason_type"] == "ticket-in-transfer"

    view = await anon.get(f"/transfers/{token}")
    assert view.status_code == 200, view.text
    assert view.json()["status"] == "offered" and view.json()["ticket_type"] == "General admission"
    assert "ada@example.com" not in view.text
    accepted = await anon.post(f"/transfers/{token}/accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    done = await app.wait_operation(started["operation_id"])
    assert done["status"] == "completed", done
    result = done["result"]
    assert (result["status"], result["delivery"]) == ("accepted", "sent")

    after = await stored(app, order.code)
    old = after.ticket(given.id)
    assert (old.state.value, old.in_transfer) == ("invalid:transferred", False)
    assert old.replaced_by == result["new_ticket_id"]
    assert after.ticket(order.tickets[1].id).is_valid
    mine = await stored(app, result["new_order_code"])
    (new,) = mine.tickets
    assert (mine.contact.email, mine.status.value, new.id, new.is_valid) == (
        RECIPIENT["email"], "paid", result["new_ticket_id"], True
    )
    assert new.barcode != given.barcode and new.ticket_type_id == given.ticket_type_id
    assert mine.payment.amount.amount == 0  # the money stays on the giver's order

    _, delivery = await app.sink.wait_for_messages(2)
    assert delivery["To"] == RECIPIENT["email"]
    pdfs = [p for p in delivery.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert {c for p in pdfs for c in decode_qr_payloads_from_pdf(p.get_content())} == {new.barcode}

    old_scan = (await app.http.post("/scan", json={"barcode": given.barcode})).json()
    assert (old_scan["result"], old_scan["reason_type"]) == ("rejected", "transferred")
    assert old_scan["reason"] == "ticket was transferred"
    assert (await app.http.post("/scan", json={"barcode": new.barcode})).json()["result"] == "accepted"

    giver = [e.type for e in await history(app, order.code)]
    assert giver.index("item-transfer-offered") < giver.index("item-transferred")
    assert "item-invalidated" in giver and "transfer-offer-sent" in giver
    taker = await history(app, mine.code)
    assert [e.type for e in taker] == ["order-created", "item-transfer-created", "tickets-sent"]
    assert taker[1].data["from_order"] == order.code
    assert (await history(app, order.code, "item-transferred"))[0].data["to_order"] == mine.code

    again = await anon.post(f"/transfers/{token}/accept")
    problem(again, 409, "transfer-closed")
    replay = await app.http.post(
        f"/orders/{order.code}/transfers", json={"ticket_id": given.id, **RECIPIENT},
        headers={"Idempotency-Key": "tr-1", **await app.headers_for("agent-7")},
    )
    assert replay.headers.get("Idempotent-Replayed") == "true"


async def test_cancelled_transfer_gives_the_ticket_back_and_kills_the_link(
    app: Harness, anon: httpx.AsyncClient
) -> None:
    order = await _seeded(app)
    given = order.tickets[0]
    started = await start_transfer(app, order)
    token = await offer_token(app)
    shown = await app.http.get(f"/orders/{order.code}/tickets/{given.id}/transfer")
    assert shown.status_code == 200 and shown.json()["status"] == "offered"
    cancelled = await app.http.post(
        f"/orders/{order.code}/tickets/{given.id}/transfer/cancel", json={"reason": "holder changed their mind"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    done = await app.wait_operation(started["operation_id"])
    assert done["result"]["status"] == "cancelled" and done["result"]["new_order_code"] is None
    after = await stored(app, order.code)
    assert after.ticket(given.id).is_valid and not after.ticket(given.id).in_transfer
    (canceled,) = await history(app, order.code, "item-transfer-canceled")
    assert canceled.data["reason"] == "holder changed their mind"
    problem(await anon.post(f"/transfers/{token}/accept"), 409, "transfer-closed")
    problem(
        await app.http.post(f"/orders/{order.code}/tickets/{given.id}/transfer/cancel", json={"reason": "again"}),
        409, "transfer-not-open",
    )
    assert (await app.http.post("/scan", json={"barcode": given.barcode})).json()["result"] == "accepted"


@pytest_asyncio.fixture
async def quick(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    """Recipients have two seconds to accept."""
    overrides = {"transfers": TransferConfig(acceptance_days=2 / 86400)}
    async with running(temporal_client, store, tmp_path, queue_prefix, settings_overrides=overrides) as harness:
        yield harness


async def test_transfer_expires_on_its_own_and_the_ticket_is_valid_again(quick: Harness) -> None:
    app = quick
    order = await _seeded(app)
    given = order.tickets[0]
    started = await start_transfer(app, order)
    token = await offer_token(app)
    done = await app.wait_operation(started["operation_id"], timeout=30)
    assert done["status"] == "completed" and done["result"]["status"] == "expired", done
    after = await stored(app, order.code)
    assert after.ticket(given.id).is_valid and not after.ticket(given.id).in_transfer
    (expired,) = await history(app, order.code, "item-transfer-canceled")
    assert expired.data["status"] == "expired" and expired.actor == "ticketops"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.extra["app"]), base_url="http://api") as anon:
        problem(await anon.post(f"/transfers/{token}/accept"), 410, "transfer-link-expired")


async def test_transfer_refusals(app: Harness, anon: httpx.AsyncClient) -> None:
    async def refused(order: Order, index: int = 0) -> tuple[int, str]:
        resp = await app.http.post(
            f"/orders/{order.code}/transfers", json={"ticket_id": order.tickets[index].id, **RECIPIENT}
        )
        return resp.status_code, resp.json()["type"].rsplit("/", 1)[-1]

    closed = await _seeded(app, allow_transfers=False)
    assert await refused(closed) == (409, "transfers-not-allowed")
    detail = (await app.http.get(f"/orders/{closed.code}")).json()
    assert (action(detail, "transfer")["enabled"], action(detail, "transfer")["reason_type"]) == (
        False, "transfers-not-allowed"
    )
    started = await _seeded(app, starts_in=timedelta(hours=-1))
    assert await refused(started) == (409, "event-started")

    order = await _seeded(app)
    async with app.store.transaction() as conn:
        current = await load_order(conn, order.code)
        scanned = current.tickets[1].model_copy(update={"scan_state": ScanState.SCANNED_IN})
        await save_order(conn, current, current.model_copy(update={"tickets": [current.tickets[0], scanned]}), [])
    assert await refused(order, 1) == (409, "ticket-used")

    await start_transfer(app, order, 0)
    await offer_token(app)
    assert await refused(order, 0) == (409, "ticket-in-transfer")
    code = order.code
    for path, body in (
        ("cancel", {"reason": "customer asked"}),
        ("reissue", {"ticket_ids": [order.tickets[0].id]}),
        ("resend", None),
        ("refunds/preview", {"kind": "full", "reason": "customer asked"}),
    ):
        resp = await app.http.post(f"/orders/{code}/{path}", json=body)
        problem(resp, 409, "ticket-in-transfer")
    detail = (await app.http.get(f"/orders/{code}")).json()
    for name in ("cancel", "resend", "refund"):
        assert action(detail, name)["reason_type"] == "ticket-in-transfer", name

    secret = app.settings.signing_secret.get_secret_value()
    other_purpose = sign(secret, "return", f"transfer/{code}/x/y", datetime.now(UTC) + timedelta(days=1))
    problem(await anon.post(f"/transfers/{other_purpose}/accept"), 403, "transfer-link-invalid")
    problem(await anon.get("/transfers/not.a-token"), 403, "transfer-link-invalid")
    unknown = sign(secret, "transfer", "transfer/NOPE/x/y", datetime.now(UTC) + timedelta(days=1))
    problem(await anon.get(f"/transfers/{unknown}"), 404, "transfer-not-found")


async def test_holder_starts_a_transfer_by_their_manage_link(app: Harness, anon: httpx.AsyncClient) -> None:
    order = await _seeded(app)
    given = order.tickets[1]
    problem(await anon.get(f"/orders/{order.code}/tickets/{given.id}/transfer-link"), 401, "unauthorized")
    problem(await app.http.get(f"/orders/{order.code}/tickets/tkt_nope/transfer-link"), 404, "ticket-not-found")
    made = await app.http.get(f"/orders/{order.code}/tickets/{given.id}/transfer-link")
    assert made.status_code == 200, made.text
    url = made.json()["url"]
    assert url.startswith(app.settings.public_url.rstrip("/") + "/transfers/start/")
    token = url.rsplit("/", 1)[1]

    problem(await anon.post(f"/transfers/start/{token}", json={"name": "Grace", "email": "not-an-email"}), 422,
            "validation-error")
    problem(await anon.post(f"/transfers/start/{token[:-3]}abc", json=RECIPIENT), 403, "manage-ticket-link-invalid")
    other = sign(app.settings.signing_secret.get_secret_value(), "return", f"{order.code}/{given.id}",
                 datetime.now(UTC) + timedelta(days=1))
    problem(await anon.post(f"/transfers/start/{other}", json=RECIPIENT), 403, "manage-ticket-link-invalid")

    started = await anon.post(f"/transfers/start/{token}", json=RECIPIENT)
    assert started.status_code == 202, started.text
    assert started.json()["ticket_id"] == given.id
    offer = await offer_token(app)
    assert (await anon.post(f"/transfers/{offer}/accept")).status_code == 200
    done = await app.wait_operation(started.json()["operation_id"])
    assert (done["result"]["status"], done["result"]["delivery"]) == ("accepted", "sent")
    after = await stored(app, order.code)
    assert after.ticket(given.id).state.value == "invalid:transferred"
    assert after.ticket(order.tickets[0].id).is_valid
    (offered,) = await history(app, order.code, "item-transfer-offered")
    assert offered.actor == "holder-link"
    # The link names that one ticket: it is gone now, so the link starts nothing more.
    problem(await anon.post(f"/transfers/start/{token}", json=RECIPIENT), 409, "ticket-invalid")


async def test_no_manage_link_once_the_event_started(app: Harness) -> None:
    order = await _seeded(app, starts_in=timedelta(minutes=-5))
    problem(await app.http.get(f"/orders/{order.code}/tickets/{order.tickets[0].id}/transfer-link"), 409,
            "event-started")


MANAGE = re.compile(r"https?://\S+/transfers/start/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


async def _tickets_email_links(app: Harness, order: Order) -> list[str]:
    sent = await app.http.post(f"/orders/{order.code}/resend", headers=await app.headers_for("agent-7"))
    assert (await app.wait_operation(sent.json()["operation_id"]))["status"] == "completed"
    [mail] = await app.sink.wait_for_messages(1)
    text = mail.get_body(("plain",))
    assert text is not None
    return MANAGE.findall(text.get_content())


async def test_the_tickets_email_carries_a_manage_link_per_ticket(app: Harness, anon: httpx.AsyncClient) -> None:
    order = await _seeded(app)
    tokens = await _tickets_email_links(app, order)
    assert len(tokens) == 2
    started = await anon.post(f"/transfers/start/{tokens[1]}", json=RECIPIENT)
    assert started.status_code == 202, started.text
    assert started.json()["ticket_id"] == order.tickets[1].id


async def test_no_manage_links_where_the_event_allows_no_transfers(app: Harness) -> None:
    order = await _seeded(app, allow_transfers=False)
    assert await _tickets_email_links(app, order) == []
