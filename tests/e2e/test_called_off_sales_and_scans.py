"""Sales and scans of an order whose event or time slot is called off, through the API, in the window
between the mark (the cancellation's first step) and its run reaching the order: refused with
`event-cancelled` / `time-slot-cancelled`, nothing changed, and money that arrives anyway reaches finance."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client

from devtools.stripe_server.server import StripeServer
from runtime.settings import ReservationConfig
from tests.builders import make_event, make_order
from tests.e2e.action_support import action, history, problem, stored
from tests.e2e.bulk_support import wait_bulk
from tests.e2e.reservation_support import delivered, intent_paid, open_reservation
from tests.harness import Harness, running, seed
from ticketing.models import Event, Order, PaymentMethod
from ticketing.states import OrderStatus, PaymentStatus, ScanState
from ticketing.store.bulk import mark_event_cancelled, mark_time_slot_cancelled
from ticketing.store.engine import Store

KINDS = ["event-cancelled", "time-slot-cancelled"]


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test here (and `stripe_app`, which takes `store`) on SQLite and on PostgreSQL."""
    return any_store


@pytest_asyncio.fixture
async def api(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    async with running(temporal_client, store, tmp_path, queue_prefix, with_workers=False) as harness:
        yield harness


async def _orders(h: Harness, status: OrderStatus = OrderStatus.PAID, **kw: Any) -> tuple[Event, Order, Order, Order]:
    """An event with two orders in its evening slot (the one called off) and one in its late slot."""
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    eve = make_order(event, types, tickets=2, slot=slots[0].id, status=status, **kw)
    late = make_order(event, types, tickets=1, slot=slots[1].id, status=status, **kw)
    spare = make_order(event, types, tickets=1, slot=slots[0].id, status=status, **kw)
    await seed(h.store, event, types, slots, [eve, late, spare])
    return event, eve, late, spare


async def _call_off(h: Harness, event: Event, kind: str) -> None:
    """What the cancellation's prepare step does first; its run has not reached any order yet."""
    async with h.store.transaction() as conn:
        if kind == "event-cancelled":
            await mark_event_cancelled(conn, event.id)
        else:
            await mark_time_slot_cancelled(conn, event.id, f"{event.id}_eve")


async def _deadline_recorded(h: Harness, code: str) -> None:
    """Until the reservation's run recorded its deadline (a mark before that fails the run's start instead)."""
    for _ in range(100):
        if await history(h, code, "reservation-deadline-set"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the reservation did not start")


@pytest.mark.parametrize("kind", KINDS)
async def test_scans_of_a_called_off_order_are_refused_and_change_nothing(api: Harness, kind: str) -> None:
    event, order, other, _ = await _orders(api)
    await _call_off(api, event, kind)
    before = await stored(api, order.code)
    url = f"/orders/{order.code}/tickets/scan-status"
    ids = [t.id for t in order.tickets]
    for status in ("scanned-in", "scanned-out", "unscanned", "blacklisted"):
        problem(await api.http.post(url, json={"ticket_ids": ids, "status": status}), 409, kind)
    assert await stored(api, order.code) == before
    assert await history(api, order.code, "scan-status-changed") == []

    outcome = (await api.http.post("/scan", json={"barcode": order.tickets[0].barcode, "access_point": "n"})).json()
    assert (outcome["result"], outcome["reason_type"], outcome["scan_state"]) == ("rejected", kind, "unscanned")
    after = await stored(api, order.code)
    # The gate records the rejected scan, as it records every scan; the ticket's state stays as it was.
    assert [(t.state, t.scan_state) for t in after.tickets] == [(t.state, t.scan_state) for t in before.tickets]
    assert [(s.result, s.reason) for s in after.tickets[0].scans] == [("rejected", outcome["reason"])]

    detail = (await api.http.get(f"/orders/{order.code}")).json()
    for name in ("set-scan-status", "reschedule", "transfer"):
        assert (action(detail, name)["enabled"], action(detail, name)["reason_type"]) == (False, kind), name

    # The late slot's order: the event goes on when only the evening is called off.
    late = (await api.http.post("/scan", json={"barcode": other.tickets[0].barcode})).json()
    expected = ("rejected", kind) if kind == "event-cancelled" else ("accepted", None)
    assert (late["result"], late["reason_type"]) == expected


@pytest.mark.parametrize("kind", KINDS)
async def test_no_ticket_is_moved_out_of_or_into_a_called_off_slot(api: Harness, kind: str) -> None:
    event, order, other, _ = await _orders(api)
    await _call_off(api, event, kind)
    before = (await stored(api, order.code), await stored(api, other.code))
    out = await api.http.post(f"/orders/{order.code}/reschedule", json={"time_slot_id": f"{event.id}_late"})
    problem(out, 409, kind)
    into = await api.http.post(f"/orders/{other.code}/reschedule", json={"time_slot_id": f"{event.id}_eve"})
    problem(into, 409, kind)
    assert (await stored(api, order.code), await stored(api, other.code)) == before


@pytest.mark.parametrize("kind", KINDS)
async def test_a_called_off_reservation_takes_no_payment_and_stripe_money_reaches_finance(
    stripe_app: Harness, stripe: StripeServer, kind: str
) -> None:
    app = stripe_app
    event, order, _, spare = await _orders(app, OrderStatus.RESERVED, method=PaymentMethod.INVOICE)
    deadline = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    op = await open_reservation(app, order.code, deadline)
    await _deadline_recorded(app, order.code)
    await _call_off(app, event, kind)
    before = await stored(app, order.code)
    finance = await app.headers_for("finance-1", "finance")

    detail = (await app.http.get(f"/orders/{order.code}")).json()
    assert (action(detail, "mark-paid")["reason_type"], action(detail, "extend-deadline")["reason_type"]) == (
        kind, kind)
    paid = await app.http.post(f"/orders/{order.code}/reservation/paid", json={"reference": "SEPA-1"},
                               headers=finance)
    problem(paid, 409, kind)
    later = (deadline + timedelta(days=1)).isoformat()
    problem(await app.http.post(f"/orders/{order.code}/reservation/extend", json={"deadline": later}), 409, kind)
    problem(await app.http.post(f"/orders/{spare.code}/reservation", json={"days": 2}), 409, kind)

    # The buyer pays at Stripe anyway: not applied, finance's item says why.
    amount = order.payment.amount.amount
    intent_id, event_id = await intent_paid(stripe, order.code, amount)
    await delivered(stripe, event_id)
    items = (await app.http.get("/reconciliation/items", params={"class": "payment-unapplied"},
                                headers=finance)).json()
    (item,) = [i for i in items if i["processor_side"]["payment_id"] == intent_id]
    assert (item["order_code"], item["ledger"]["refusal"], item["ledger"]["order_status"]) == (
        order.code, kind, "reserved")
    assert item["amount"]["amount"] == amount

    after = await stored(app, order.code)
    assert after == before
    assert (after.status, after.payment.status) == (OrderStatus.RESERVED, PaymentStatus.PENDING)
    assert await history(app, order.code, "payment-received") == []
    assert {t.scan_state for t in after.tickets} == {ScanState.UNSCANNED}
    assert await history(app, spare.code, "reservation-deadline-set") == []
    assert op == f"reservation/{order.code}"


async def test_no_payment_reminder_goes_out_for_a_called_off_reservation(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str
) -> None:
    overrides = {"reservations": ReservationConfig(reminder_hours=[3 / 3600, 1.5 / 3600])}
    async with running(temporal_client, store, tmp_path, queue_prefix, settings_overrides=overrides) as app:
        event, order, _, _ = await _orders(app, OrderStatus.RESERVED, method=PaymentMethod.INVOICE)
        op = await open_reservation(app, order.code, (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0))
        await _deadline_recorded(app, order.code)
        await _call_off(app, event, "time-slot-cancelled")  # before the first reminder, 2 s in
        done = await app.wait_operation(op, timeout=30)
        # Nobody paid: it expires as any reservation does (seats back), and the buyer was not asked to pay.
        assert done["result"]["status"] == "expired", done
        assert app.sink.messages == []
        assert await history(app, order.code, "payment-reminder-sent") == []


@pytest.mark.parametrize(
    ("pay_after", "cancel_after"), [(0.0, 0.3), (0.0, 0.0), (0.05, 0.0), (0.3, 0.0)],
    ids=["pay-first", "together", "cancel-50ms-ahead", "cancel-first"],
)
async def test_mark_paid_racing_the_slot_s_cancellation_never_leaves_a_paid_order_in_it(
    stripe_app: Harness, pay_after: float, cancel_after: float
) -> None:
    app = stripe_app
    event, order, _, _ = await _orders(app, OrderStatus.RESERVED, method=PaymentMethod.INVOICE)
    await open_reservation(app, order.code, (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0))
    await _deadline_recorded(app, order.code)
    finance = await app.headers_for("finance-1", "finance")

    async def pay() -> Any:
        await asyncio.sleep(pay_after)
        return await app.http.post(f"/orders/{order.code}/reservation/paid", json={"reference": "SEPA-2"},
                                   headers=finance)

    async def cancel() -> dict[str, Any]:
        await asyncio.sleep(cancel_after)
        resp = await app.http.post(f"/events/{event.id}/cancel", json={
            "reason": "the evening was called off", "time_slot_id": f"{event.id}_eve", "notify": False})
        assert resp.status_code == 202, resp.text
        return await wait_bulk(app, resp.json()["bulk_id"], timeout=90)

    paid, done = await asyncio.gather(pay(), cancel())
    assert done["status"] == "completed" and "failed" not in done["counts"], done
    after = await stored(app, order.code)
    assert after.status is OrderStatus.CANCELLED  # either way the run reached it: nothing stays sold in the slot
    received = await history(app, order.code, "payment-received")
    if paid.status_code == 200:  # paid before the mark: the run cancelled it and owes the money back, openly
        assert len(received) == 1
        assert after.pending_refund_total.amount + after.refunded_total.amount == order.payment.amount.amount
    else:  # the mark came first: refused (by the mark, or by the order the run has cancelled), no money taken
        assert paid.status_code == 409, paid.text
        assert paid.json()["type"].rsplit("/", 1)[-1] in {"time-slot-cancelled", "order-cancelled"}, paid.text
        assert received == [] and after.payment.status is not PaymentStatus.SUCCEEDED
        assert (after.refunded_total.amount, after.pending_refund_total.amount) == (0, 0)
