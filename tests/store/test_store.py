"""The store on SQLite and PostgreSQL: round trips, versions, history, search, inventory."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from tests.builders import NOW, make_event, make_order
from ticketing.errors import ConcurrentModification, NotFound
from ticketing.models import Contact, OrderEvent, Personalisation, Scan
from ticketing.states import ScanState, TicketState, TransferStatus
from ticketing.store.bulk import create_bulk, mark_event_cancelled, mark_time_slot_cancelled
from ticketing.store.engine import Store
from ticketing.store.orders import (
    adjust_inventory,
    insert_event,
    insert_order,
    load_event,
    load_history,
    load_order,
    load_ticket_types,
    load_time_slots,
    save_order,
)
from ticketing.store.search import search_orders
from ticketing.store.tables import bulk_items
from ticketing.store.transfers import insert_transfer, open_transfers_of_bulk
from ticketing.transfers import TicketTransfer


async def _seed(store: Store, **kw):
    event, types, slots = make_event()
    order = make_order(event, types, **kw)
    async with store.transaction() as conn:
        await insert_event(conn, event, types, slots)
        await insert_order(conn, order, [OrderEvent(type="order-created", actor="test", at=NOW)])
    return event, types, order


async def test_order_round_trip(any_store: Store) -> None:
    _, _, order = await _seed(any_store, tickets=3, vip=1, booking_fee=100)
    async with any_store.transaction() as conn:
        loaded = await load_order(conn, order.code)
    assert loaded == order
    assert [line.quantity for line in loaded.lines] == [3, 1]
    assert loaded.paid_total.amount == 3 * 3500 + 9000 + 250 + 100


async def test_unknown_order_is_not_found(any_store: Store) -> None:
    async with any_store.transaction() as conn:
        with pytest.raises(NotFound) as info:
            await load_order(conn, "NOPE")
    assert info.value.type == "order-not-found"


async def test_save_writes_tickets_scans_and_history_together(any_store: Store) -> None:
    _, _, order = await _seed(any_store)
    first = order.tickets[0]
    changed = first.model_copy(
        update={
            "scan_state": ScanState.SCANNED_IN,
            "personalisation": Personalisation(name="Grace", email="grace@example.com"),
            "scans": [Scan(at=NOW, result="accepted", access_point="Gate A", scan_state=ScanState.SCANNED_IN)],
        }
    )
    after = order.model_copy(update={"tickets": [changed, *order.tickets[1:]]})
    async with any_store.transaction() as conn:
        saved = await save_order(conn, order, after, [OrderEvent(type="ticket-scanned", actor="gate", at=NOW)])
    assert saved.version == order.version + 1
    async with any_store.transaction() as conn:
        reloaded = await load_order(conn, order.code)
        history = await load_history(conn, order.code)
    assert reloaded.tickets[0].scans[0].access_point == "Gate A"
    assert reloaded.tickets[0].personalisation == Personalisation(name="Grace", email="grace@example.com")
    assert [h.type for h in history] == ["order-created", "ticket-scanned"]


async def test_stale_write_is_refused_and_changes_nothing(any_store: Store) -> None:
    _, _, order = await _seed(any_store)
    cancelled = [t.model_copy(update={"state": TicketState.CANCELLED}) for t in order.tickets]
    async with any_store.transaction() as conn:
        await save_order(conn, order, order.model_copy(update={"tickets": cancelled}), [])
    refunded = [t.model_copy(update={"state": TicketState.REFUNDED}) for t in order.tickets]
    with pytest.raises(ConcurrentModification):
        async with any_store.transaction() as conn:
            await save_order(
                conn,
                order,
                order.model_copy(update={"tickets": refunded}),
                [OrderEvent(type="lost", actor="x", at=NOW)],
            )
    async with any_store.transaction() as conn:
        now = await load_order(conn, order.code)
        history = await load_history(conn, order.code)
    assert {t.state for t in now.tickets} == {TicketState.CANCELLED}
    assert "lost" not in [h.type for h in history]


async def test_concurrent_mutations_one_wins(any_store: Store) -> None:
    _, _, order = await _seed(any_store)

    async def mutate(state: TicketState) -> str:
        try:
            async with any_store.transaction() as conn:
                current = await load_order(conn, order.code, for_update=True)
                await asyncio.sleep(0.05)
                changed = [t.model_copy(update={"state": state}) for t in current.tickets]
                await save_order(conn, current, current.model_copy(update={"tickets": changed}), [])
            return "ok"
        except ConcurrentModification:
            return "conflict"

    results = await asyncio.gather(mutate(TicketState.CANCELLED), mutate(TicketState.BLACKLISTED))
    async with any_store.transaction() as conn:
        final = await load_order(conn, order.code)
    # Serialised (row lock / BEGIN IMMEDIATE): both may commit in turn, never interleaved.
    assert final.version == order.version + results.count("ok")
    assert len({t.state for t in final.tickets}) == 1


async def test_history_dedupe_key_records_once(any_store: Store) -> None:
    _, _, order = await _seed(any_store)
    event = OrderEvent(type="tickets-resent", actor="a", at=NOW, dedupe_key="k1")
    from ticketing.store.orders import append_history

    for _ in range(3):
        async with any_store.transaction() as conn:
            await append_history(conn, order.code, [event])
    async with any_store.transaction() as conn:
        history = await load_history(conn, order.code)
    assert [h.type for h in history].count("tickets-resent") == 1


async def test_search(any_store: Store) -> None:
    event, types, order = await _seed(any_store)
    other = make_order(event, types, email="bob@example.org").model_copy(
        update={"created_at": NOW + timedelta(minutes=1)}
    )
    other = other.model_copy(update={"contact": other.contact.model_copy(update={"name": "Bob O'Brien"})})
    async with any_store.transaction() as conn:
        await insert_order(conn, other, [])
        assert await search_orders(conn, "ADA@example.com", None) == [order.code]
        assert await search_orders(conn, "o'brien", None) == [other.code]
        assert await search_orders(conn, order.code.lower(), None) == [order.code]
        assert await search_orders(conn, other.tickets[1].barcode, None) == [other.code]
        assert await search_orders(conn, None, event.id) == [other.code, order.code]
        assert await search_orders(conn, None, "evt_other") == []
        assert await search_orders(conn, "%", None) == []


async def test_inventory_cannot_oversell(any_store: Store) -> None:
    event, types, _ = await _seed(any_store)
    vip = types[1]
    async with any_store.transaction() as conn:
        await adjust_inventory(conn, vip.id, None, vip.quota)
    with pytest.raises(IntegrityError):
        async with any_store.transaction() as conn:
            await adjust_inventory(conn, vip.id, None, 1)
    async with any_store.transaction() as conn:
        await adjust_inventory(conn, vip.id, None, -1)
        assert [t.sold for t in await load_ticket_types(conn, event.id) if t.id == vip.id] == [vip.quota - 1]


async def test_an_event_held_for_share_makes_its_cancellation_wait(any_store: Store) -> None:
    """A transfer's acceptance holds its event: the cancellation's mark waits for it, then the acceptance is seen."""
    event, _, _ = await _seed(any_store)
    order: list[str] = []

    async def accept() -> None:
        async with any_store.transaction() as conn:
            assert not (await load_event(conn, event.id, for_share=True)).cancelled
            await asyncio.sleep(0.2)
            order.append("accepted")

    async def cancel() -> None:
        await asyncio.sleep(0.05)
        async with any_store.transaction() as conn:
            await mark_event_cancelled(conn, event.id)
            order.append("marked")

    await asyncio.gather(accept(), cancel())
    assert order == ["accepted", "marked"]
    async with any_store.transaction() as conn:
        assert (await load_event(conn, event.id, for_share=True)).cancelled


async def test_a_time_slot_cancellation_waits_for_an_event_held_for_share(any_store: Store) -> None:
    """A transfer being accepted (or opened) holds its event: the slot's mark waits for it, then is seen."""
    event, _, _ = await _seed(any_store)
    slot = f"{event.id}_eve"
    order: list[str] = []

    async def accept() -> None:
        async with any_store.transaction() as conn:
            assert (await load_event(conn, event.id, for_share=True)).cancelled_time_slots == []
            await asyncio.sleep(0.2)
            order.append("accepted")

    async def cancel() -> None:
        await asyncio.sleep(0.05)
        async with any_store.transaction() as conn:
            await mark_time_slot_cancelled(conn, event.id, slot)
            order.append("marked")

    await asyncio.gather(accept(), cancel())
    assert order == ["accepted", "marked"]
    async with any_store.transaction() as conn:
        after = await load_event(conn, event.id, for_share=True)
        slots = {s.id: s.cancelled for s in await load_time_slots(conn, event.id)}
    assert (after.cancelled, after.cancelled_time_slots) == (False, [slot])
    assert slots == {slot: True, f"{event.id}_late": False}


async def test_the_open_transfers_of_a_bulk_operations_orders_page_by_id(any_store: Store) -> None:
    event, types, order = await _seed(any_store, tickets=3)
    other = make_order(event, types, tickets=1)
    async with any_store.transaction() as conn:
        await insert_order(conn, other, [])
        await create_bulk(conn, bulk_id="bk_t", kind="event-cancellation", event_id=event.id, workflow_id="wf",
                          params={}, created_by="ops")
        await conn.execute(bulk_items.insert().values(bulk_id="bk_t", key=order.code, status="pending",
                                                      updated_at=NOW))
        for n, (code, ticket, status) in enumerate([
            (order.code, order.tickets[0].id, TransferStatus.OFFERED),
            (order.code, order.tickets[1].id, TransferStatus.REQUESTED),
            (order.code, order.tickets[2].id, TransferStatus.ACCEPTED),  # settled: not listed
            (other.code, other.tickets[0].id, TransferStatus.OFFERED),  # not this operation's order
        ]):
            await insert_transfer(conn, TicketTransfer(
                id=f"transfer/{code}/{ticket}/k{n}", order_code=code, ticket_id=ticket, recipient=Contact(name="G"),
                status=status, created_by="agent", created_at=NOW,
            ))
        first = await open_transfers_of_bulk(conn, "bk_t", after=None, limit=1)
        rest = await open_transfers_of_bulk(conn, "bk_t", after=first[0].id, limit=1)
        done = await open_transfers_of_bulk(conn, "bk_t", after=rest[0].id, limit=1)
    assert [t.ticket_id for t in first + rest] == sorted([order.tickets[0].id, order.tickets[1].id],
                                                        key=lambda t: f"transfer/{order.code}/{t}")
    assert done == []
