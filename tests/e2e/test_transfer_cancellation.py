"""An event or time-slot cancellation with a ticket still on offer: the transfer is closed first, through its
own workflow, and the giver is refunded in full in the same run; the recipient's link is refused.

API -> EventCancellation -> close_event_transfers -> TransferTicket's cancel update -> store, Stripe stand-in
over HTTP, SMTP sink. The race: the recipient accepts while the cancellation starts; it ends accepted before
(the replacement order is cancelled by the same run) or refused with `event-cancelled`, never in between.
"""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa

from devtools.stripe_server.server import StripeServer
from tests.builders import make_event, make_order
from tests.e2e.action_support import history, problem, stored
from tests.e2e.bulk_support import wait_bulk
from tests.e2e.refund_support import paid_by_card, stripe_refunds_for
from tests.e2e.transfer_support import RECIPIENT, offer_token, start_transfer
from tests.harness import Harness, seed
from ticketing.models import Event, Order
from ticketing.states import OrderStatus, TicketState, TransferStatus
from ticketing.store.engine import Store
from ticketing.store.orders import load_event
from ticketing.store.tables import orders as orders_table
from ticketing.store.transfers import load_transfer
from ticketing.transfers import CANCELED_EVENT


@pytest.fixture
def store(any_store: Store) -> Store:
    """On SQLite and on PostgreSQL: the race is settled by the event row's locks on the latter."""
    return any_store


@pytest.fixture
def app(stripe_app: Harness) -> Harness:
    return stripe_app


@pytest_asyncio.fixture
async def anon(app: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """The recipient: no credentials, only the link."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app.extra["app"]), base_url="http://api") as c:
        yield c


async def _event_with(app: Harness, stripe: StripeServer, slots: list[str | None]) -> tuple[Event, list[Order]]:
    """An event still ahead with one card order of two tickets per entry, in that time slot (suffix) or none."""
    event, types, time_slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    event = event.model_copy(update={"starts_at": datetime.now(UTC) + timedelta(days=30)})
    made = [
        await paid_by_card(stripe, make_order(event, types, tickets=2, slot=f"{event.id}_{s}" if s else None))
        for s in slots
    ]
    await seed(app.store, event, types, time_slots, made)
    return event, made


async def _transfer_status(app: Harness, transfer_id: str) -> TransferStatus:
    async with app.store.transaction() as conn:
        return (await load_transfer(conn, transfer_id)).status


async def _cancel(app: Harness, event_id: str, **body: Any) -> dict[str, Any]:
    resp = await app.http.post(f"/events/{event_id}/cancel", json={"reason": "the show was called off", **body})
    assert resp.status_code == 202, resp.text
    return await wait_bulk(app, resp.json()["bulk_id"], timeout=90)


async def _report(app: Harness, bulk_id: str) -> dict[str, str]:
    text = (await app.http.get(f"/bulk/{bulk_id}/report.csv")).text
    return {r["recipient_or_order"]: r["status"] for r in csv.DictReader(io.StringIO(text))}


def _refunded_in_full(stripe: StripeServer, order: Order) -> None:
    (refund,) = stripe_refunds_for(stripe, order.payment.reference)
    assert (refund["amount"], refund["status"]) == (order.payment.amount.amount, "succeeded")


async def _closed_by_the_cancellation(app: Harness, order: Order, started: dict[str, Any]) -> None:
    """The transfer's own run ended cancelled, by the update, with the reason on the giver's history."""
    done = await app.wait_operation(started["operation_id"])
    assert done["result"]["status"] == "cancelled", done
    assert await _transfer_status(app, started["transfer_id"]) is TransferStatus.CANCELLED
    (closed,) = await history(app, order.code, CANCELED_EVENT)
    assert (closed.data["reason"], closed.data["status"]) == ("event-cancelled", "cancelled")


async def test_event_cancellation_closes_the_open_transfer_and_refunds_the_giver_in_one_run(
    app: Harness, stripe: StripeServer, anon: httpx.AsyncClient
) -> None:
    event, (order,) = await _event_with(app, stripe, [None])
    started = await start_transfer(app, order)
    token = await offer_token(app)

    done = await _cancel(app, event.id)
    assert done["status"] == "completed" and done["counts"] == {"refunded": 1}, done  # nothing left failed
    await _closed_by_the_cancellation(app, order, started)
    _refunded_in_full(stripe, order)
    after = await stored(app, order.code)
    assert after.status is OrderStatus.CANCELLED and after.refunded_total == order.payment.amount
    assert {(t.state, t.in_transfer) for t in after.tickets} == {(TicketState.CANCELLED, False)}

    problem(await anon.post(f"/transfers/{token}/accept"), 409, "event-cancelled")
    assert (await anon.get(f"/transfers/{token}")).json()["status"] == "cancelled"
    # The holder hears of it once (the cancellation notice); the recipient had only the offer.
    to = [m["To"] for m in app.sink.messages]
    assert sorted(to) == sorted([str(order.contact.email), RECIPIENT["email"]]), to


async def test_time_slot_cancellation_closes_its_orders_transfers_only(
    app: Harness, stripe: StripeServer, anon: httpx.AsyncClient
) -> None:
    event, (evening, late) = await _event_with(app, stripe, ["eve", "late"])
    in_slot = await start_transfer(app, evening)
    token = await offer_token(app)
    elsewhere = await start_transfer(app, late)
    await offer_token(app, 2)

    done = await _cancel(app, event.id, time_slot_id=f"{event.id}_eve", notify=False)
    assert done["status"] == "completed" and done["counts"] == {"refunded": 1}, done
    await _closed_by_the_cancellation(app, evening, in_slot)
    _refunded_in_full(stripe, evening)
    assert (await stored(app, evening.code)).status is OrderStatus.CANCELLED
    problem(await anon.post(f"/transfers/{token}/accept"), 409, "time-slot-cancelled")

    # The other slot's offer stands, and the event goes on.
    assert await _transfer_status(app, elsewhere["transfer_id"]) is TransferStatus.OFFERED
    assert (await stored(app, late.code)).tickets[0].in_transfer
    async with app.store.transaction() as conn:
        after = await load_event(conn, event.id)
    assert not after.cancelled and after.cancelled_time_slots == [f"{event.id}_eve"]
    cancelled = await app.http.post(f"/orders/{late.code}/tickets/{late.tickets[0].id}/transfer/cancel",
                                    json={"reason": "test over"})
    assert cancelled.status_code == 200, cancelled.text


@pytest.mark.parametrize(
    ("accept_after", "cancel_after"),
    [(0.0, 0.15), (0.0, 0.0), (0.02, 0.0), (0.04, 0.0), (0.15, 0.0)],
    ids=["accept-first", "together", "cancel-20ms-ahead", "cancel-40ms-ahead", "cancel-first"],
)
async def test_acceptance_racing_the_cancellation_ends_accepted_before_or_refused(
    app: Harness, stripe: StripeServer, anon: httpx.AsyncClient, accept_after: float, cancel_after: float
) -> None:
    event, (order,) = await _event_with(app, stripe, [None])
    started = await start_transfer(app, order)
    token = await offer_token(app)

    async def accept() -> httpx.Response:
        await asyncio.sleep(accept_after)
        return await anon.post(f"/transfers/{token}/accept")

    async def cancel() -> dict[str, Any]:
        await asyncio.sleep(cancel_after)
        return await _cancel(app, event.id, notify=False)

    accepted, done = await asyncio.gather(accept(), cancel())
    transfer = await app.wait_operation(started["operation_id"])
    status = await _transfer_status(app, started["transfer_id"])
    assert done["status"] == "completed" and "failed" not in done["counts"], done
    _refunded_in_full(stripe, order)  # either way the payer gets everything back, in this one run
    assert (await stored(app, order.code)).status is OrderStatus.CANCELLED
    async with app.store.transaction() as conn:
        codes = set((await conn.execute(sa.select(orders_table.c.code).where(
            orders_table.c.event_id == event.id))).scalars())
    if status is TransferStatus.ACCEPTED:  # accepted before: the replacement is in the run, and cancelled
        assert accepted.status_code == 200, accepted.text
        new_code = transfer["result"]["new_order_code"]
        assert codes == {order.code, new_code}
        assert (await _report(app, done["bulk_id"]))[new_code] == "cancelled"
        replacement = await stored(app, new_code)
        assert replacement.status is OrderStatus.CANCELLED
        assert {t.state for t in replacement.tickets} == {TicketState.CANCELLED}
    else:  # refused: the cancellation closed the offer, and no replacement was ever issued
        assert status is TransferStatus.CANCELLED and transfer["result"]["status"] == "cancelled"
        problem(accepted, 409, "event-cancelled")
        assert codes == {order.code}
