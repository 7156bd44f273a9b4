"""Seeding many orders fast, for the bulk benchmarks: the rows `insert_order` writes, in large transactions.

`ticketing.store.orders.insert_order` runs three statements per order (order, tickets, its
first history event), which takes minutes for 100k orders. Here the same rows (built by the
same row functions) go in with one `executemany` per table for thousands of orders at a
time, and the inventory is adjusted once per chunk.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from activities.ticket_pdfs import TicketPdfs
from bench.stack import SERVICE_FEE
from bench.stack import bench_event as stack_event
from documents.from_orders import ticket_document
from ticketing.issuing import build_order, new_barcode, new_id, new_order_code
from ticketing.models import Contact, Event, Fee, FeeKind, Order, PaymentMethod, TicketType
from ticketing.money import Money
from ticketing.store.engine import Store
from ticketing.store.orders import (
    _order_row,
    _ticket_row,
    adjust_inventory,
    insert_event,
    load_event,
    load_orders,
    load_ticket_types,
    load_time_slots,
)
from ticketing.store.tables import order_events, orders, tickets

CHUNK = 5000


def bench_event(tag: str | None = None) -> tuple[Event, TicketType]:
    """The benchmarks' event, with a quota large enough for any run."""
    return stack_event(f"evt_bulk_{tag or uuid.uuid4().hex[:8]}", quota=10_000_000)


def build_orders(event: Event, ticket_type: TicketType, first: int, count: int, *, tickets: int = 1) -> list[Order]:
    """Paid card orders `first`..`first+count-1`, each with its own buyer address."""
    fee = Fee(kind=FeeKind.SERVICE, amount=Money(amount=SERVICE_FEE, currency="EUR"), refundable=False)
    now = datetime.now(UTC)
    tag = event.id.removeprefix("evt_bulk_")
    return [
        build_order(
            event=event,
            items=[(ticket_type, None)] * tickets,
            contact=Contact(name=f"Buyer {i}", email=f"buyer{i}.{tag}@example.com"),
            method=PaymentMethod.CARD,
            fees=[fee],
            created_at=now,
        )
        for i in range(first, first + count)
    ]


async def insert_event_row(store: Store, event: Event, ticket_type: TicketType) -> None:
    async with store.transaction() as conn:
        await insert_event(conn, event, [ticket_type], [])


async def insert_orders(store: Store, batch: Sequence[Order]) -> None:
    """The rows `insert_order` writes for each order (order, tickets, `order-created`), in one transaction."""
    now = datetime.now(UTC)
    order_rows = [{**_order_row(o), "updated_at": now, "version": o.version} for o in batch]
    ticket_rows = [_ticket_row(t, i) for o in batch for i, t in enumerate(o.tickets)]
    await _insert_rows(store, order_rows, ticket_rows)


async def _insert_rows(store: Store, order_rows: list[dict[str, Any]], ticket_rows: list[dict[str, Any]]) -> None:
    if not order_rows:
        return
    now = datetime.now(UTC)
    history_rows = [
        {"order_code": r["code"], "type": "order-created", "actor": "bench", "at": now, "data": {}, "dedupe_key": None}
        for r in order_rows
    ]
    by_type: dict[str, int] = {}
    for t in ticket_rows:
        by_type[t["ticket_type_id"]] = by_type.get(t["ticket_type_id"], 0) + 1
    async with store.transaction() as conn:
        await conn.execute(orders.insert(), order_rows)
        if ticket_rows:
            await conn.execute(tickets.insert(), ticket_rows)
        await conn.execute(order_events.insert(), history_rows)
        for type_id, sold in by_type.items():
            await adjust_inventory(conn, type_id, None, sold)


def templated_rows(
    template: Order, first: int, count: int, tag: str, codes: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for `count` copies of `template`, each with its own code, buyer, ticket ids and barcodes.

    `build_order` takes about 0.6 ms per order (pydantic models, random barcodes): a minute
    for 100k. These are the rows `_order_row` and `_ticket_row` give for the template, with
    the identifying fields replaced, at a few microseconds each.
    """
    order_base = {**_order_row(template), "updated_at": datetime.now(UTC), "version": template.version}
    ticket_bases = [_ticket_row(t, i) for i, t in enumerate(template.tickets)]
    order_rows: list[dict[str, Any]] = []
    ticket_rows: list[dict[str, Any]] = []
    for i in range(first, first + count):
        code = new_order_code()
        while code in codes:
            code = new_order_code()
        codes.add(code)
        email = f"buyer{i}.{tag}@example.com"
        order_rows.append(
            order_base
            | {"code": code, "contact_name": f"Buyer {i}", "contact_name_search": f"buyer {i}", "contact_email": email}
        )
        ticket_rows.extend(
            base | {"id": new_id("tkt"), "order_code": code, "barcode": new_barcode()} for base in ticket_bases
        )
    return order_rows, ticket_rows


def _chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for first in range(0, total, size):
        yield first, min(size, total - first)


async def seed_event(
    store: Store, count: int, *, tickets: int = 1, tag: str | None = None, chunk: int = CHUNK
) -> tuple[Event, float]:
    """A new event with `count` paid card orders of `tickets` tickets, distinct buyers; (event, seconds taken)."""
    started = time.perf_counter()
    event, ga = bench_event(tag)
    await insert_event_row(store, event, ga)
    template = build_orders(event, ga, 0, 1, tickets=tickets)[0]
    suffix = event.id.removeprefix("evt_bulk_")
    codes: set[str] = set()
    for first, size in _chunks(count, chunk):
        await _insert_rows(store, *templated_rows(template, first, size, suffix, codes))
    return event, time.perf_counter() - started


async def prerender_tickets(store: Store, pdfs: TicketPdfs, event_id: str, chunk: int = 500) -> int:
    """Render every valid ticket of the event into the PDF cache, as issuing or an earlier delivery would."""
    rendered = 0
    async with store.transaction() as conn:
        event = await load_event(conn, event_id)
        types = {t.id: t for t in await load_ticket_types(conn, event_id)}
        slots = {s.id: s for s in await load_time_slots(conn, event_id)}
        codes = [r.code for r in await conn.execute(sa.select(orders.c.code).where(orders.c.event_id == event_id))]
    for start in range(0, len(codes), chunk):
        async with store.transaction() as conn:
            batch = await load_orders(conn, codes[start : start + chunk])
        docs = [ticket_document(o, event, t, types, slots) for o in batch for t in o.tickets if t.is_valid]
        await pdfs.get(docs)
        rendered += len(docs)
    return rendered
