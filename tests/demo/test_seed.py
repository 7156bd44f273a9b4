"""`seed_demo`: a believable spread of orders, consistent inventory, once only."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from devtools.demo_data import seed_demo
from tests.builders import NOW, make_event
from ticketing.models import Order, PaymentMethod
from ticketing.money import Money
from ticketing.states import OrderStatus, PaymentStatus, ScanState, TicketState
from ticketing.store.engine import Store
from ticketing.store.orders import insert_event, load_history, load_orders
from ticketing.store.tables import orders, ticket_types, time_slots

PROCESSOR_METHODS = (PaymentMethod.CARD, PaymentMethod.WALLET)


async def _all_orders(store: Store) -> list[Order]:
    async with store.transaction() as conn:
        codes = [r.code for r in await conn.execute(sa.select(orders.c.code).order_by(orders.c.code))]
        return await load_orders(conn, codes)


async def _sold(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    async with store.transaction() as conn:
        types = dict((await conn.execute(sa.select(ticket_types.c.id, ticket_types.c.sold))).all())
        slots = dict((await conn.execute(sa.select(time_slots.c.id, time_slots.c.sold))).all())
    return types, slots


async def test_seed_spreads_orders_over_methods_states_and_inventory(any_store: Store) -> None:
    report = await seed_demo(any_store, now=NOW)
    loaded = await _all_orders(any_store)

    assert report.seeded and report.events == 3
    assert report.orders == len(loaded) == 200
    methods = Counter(o.payment.method for o in loaded)
    assert set(methods) == set(PaymentMethod)
    assert methods.most_common(1)[0][0] is PaymentMethod.CARD
    statuses = Counter(o.status for o in loaded)
    assert statuses[OrderStatus.PAID] > 150
    assert all(2 <= statuses[s] <= 12 for s in (OrderStatus.RESERVED, OrderStatus.EXPIRED, OrderStatus.CANCELLED))
    assert all(o.contact.email and o.contact.email.endswith(("@example.com", "@example.org")) for o in loaded)
    settled = [o for o in loaded if o.payment.method in PROCESSOR_METHODS and o.payment.status.value == "succeeded"]
    assert settled and all(o.payment.reference and o.payment.reference.startswith("pi_demo_") for o in settled)
    assert all(o.paid_total.is_zero for o in loaded if o.payment.method is PaymentMethod.FREE)
    assert all(not o.valid_tickets for o in loaded if o.status in (OrderStatus.EXPIRED, OrderStatus.CANCELLED))

    # Inventory: exactly the valid tickets of paid and reserved orders hold seats.
    holding = [
        t for o in loaded if o.status in (OrderStatus.PAID, OrderStatus.RESERVED)
        for t in o.tickets if t.state is TicketState.VALID
    ]
    types, slots = await _sold(any_store)
    assert types == {k: Counter(t.ticket_type_id for t in holding)[k] for k in types}
    assert slots == {k: Counter(t.time_slot_id for t in holding)[k] for k in slots}
    assert sum(slots.values()) > 0


async def test_seed_scans_and_personalises_some_tickets(store: Store) -> None:
    await seed_demo(store, orders=120, now=NOW)
    loaded = await _all_orders(store)
    tickets = [t for o in loaded for t in o.tickets]

    scanned = [t for t in tickets if t.scan_state is ScanState.SCANNED_IN]
    assert len(scanned) >= 10
    assert all(len(t.scans) == 1 and t.scans[0].result == "accepted" and t.scans[0].at <= NOW for t in scanned)
    assert all(t.personalisation for t in scanned if t.requires_personalisation)
    needs_holder = [t for t in tickets if t.requires_personalisation and t.is_valid]
    assert any(t.personalisation and t.personalisation.complete for t in needs_holder)
    assert any(t.personalisation is None for t in needs_holder)  # something left for the agents
    scanned_order = next(o for o in loaded if any(t.scans for t in o.tickets))
    async with store.transaction() as conn:
        history = [h.type for h in await load_history(conn, scanned_order.code)]
    assert history[0] == "order-created" and "ticket-scanned" in history


async def test_a_second_seed_does_nothing(store: Store) -> None:
    await seed_demo(store, orders=20, now=NOW)
    before = (await _all_orders(store), await _sold(store))
    again = await seed_demo(store, orders=20, now=NOW)
    assert (again.seeded, again.orders) == (False, 0)
    assert "nothing seeded" in again.message
    assert (await _all_orders(store), await _sold(store)) == before


async def test_a_store_with_events_of_its_own_is_left_alone(store: Store) -> None:
    event, types, slots = make_event()
    async with store.transaction() as conn:
        await insert_event(conn, event, types, slots)
    assert not (await seed_demo(store, now=NOW)).seeded
    assert await _all_orders(store) == []


def _fingerprint(loaded: list[Order]) -> list[Any]:
    return [
        (o.code, o.status, o.payment.method, o.payment.amount, o.payment.reference, o.contact, o.created_at,
         [(t.ticket_type_id, t.time_slot_id, t.scan_state, t.personalisation) for t in o.tickets])
        for o in loaded
    ]


async def test_the_same_seed_gives_the_same_orders(store: Store, sqlite_template: Path, tmp_path: Path) -> None:
    shutil.copy(sqlite_template, tmp_path / "twin.sqlite")
    twin = Store(f"sqlite+aiosqlite:///{tmp_path / 'twin.sqlite'}")
    try:
        await seed_demo(store, orders=40, rng_seed=3, now=NOW)
        await seed_demo(twin, orders=40, rng_seed=3, now=NOW)
        first, second = await _all_orders(store), await _all_orders(twin)
    finally:
        await twin.dispose()
    assert _fingerprint(first) == _fingerprint(second)
    assert {t.barcode for o in first for t in o.tickets}.isdisjoint(t.barcode for o in second for t in o.tickets)


async def test_card_and_wallet_payments_come_from_the_caller(store: Store) -> None:
    calls: list[tuple[Money, str]] = []

    async def create_payment(amount: Money, description: str) -> tuple[str, str | None]:
        calls.append((amount, description))
        return f"pi_from_caller_{len(calls)}", "7726"

    await seed_demo(store, orders=60, create_payment=create_payment, now=NOW)
    by_reference = {f"pi_from_caller_{i}": call for i, call in enumerate(calls, start=1)}
    settled = [
        o for o in await _all_orders(store)
        if o.payment.method in PROCESSOR_METHODS and o.payment.status is PaymentStatus.SUCCEEDED
    ]
    assert len(settled) == len(calls) > 10
    for order in settled:
        amount, description = by_reference[order.payment.reference or ""]
        assert amount == order.payment.amount and order.code in description
        # the card's digits reach the order (what the buyer's emails show); a wallet has none
        assert order.payment.card_last4 == ("7726" if order.payment.method is PaymentMethod.CARD else None)
