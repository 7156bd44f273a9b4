"""The store half of an order import: load what the file refers to, check, and write, in one transaction.

Parsing and every rule about a file's content live in `ticketing/importing.py`; this
module only reads the catalogue and the taken codes, hands them to `validate`, and
writes the orders it gets back. The checks run in the same transaction as the writes,
so a file checked against one state of the store is never written over another.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.errors import NotFound
from ticketing.importing import (
    Catalogue,
    ImportedOrder,
    ImportFailed,
    ImportIssue,
    ImportReport,
    ParsedFile,
    build_imported_order,
    validate,
)
from ticketing.issuing import new_order_code
from ticketing.models import OrderEvent
from ticketing.store import orders as db
from ticketing.store.engine import Store
from ticketing.store.tables import orders as orders_table


async def import_orders(store: Store, parsed: ParsedFile, *, source: str, actor: str) -> ImportReport:
    """Import every order of a parsed file in one transaction, or none; raises ImportFailed.

    `source` (the file's name) is recorded in each order's history.
    """
    try:
        async with store.transaction() as conn:
            cat = await _catalogue(conn, parsed.event_ids())
            imported = validate(parsed, cat, await _existing_codes(conn, parsed.order_codes()))
            return await _write(conn, imported, cat, source, actor)
    except IntegrityError as err:  # a concurrent writer took a code or the last seats
        problem = "the store changed during the import; nothing was imported, run it again"
        raise ImportFailed([ImportIssue(problem)]) from err


async def _catalogue(conn: AsyncConnection, event_ids: set[str]) -> Catalogue:
    cat = Catalogue({}, {}, {})
    for event_id in sorted(event_ids):
        try:
            cat.events[event_id] = await db.load_event(conn, event_id)
        except NotFound:
            continue
        cat.types[event_id] = {t.id: t for t in await db.load_ticket_types(conn, event_id)}
        cat.slots[event_id] = {s.id: s for s in await db.load_time_slots(conn, event_id)}
    return cat


async def _existing_codes(conn: AsyncConnection, codes: set[str]) -> set[str]:
    if not codes:
        return set()
    found = await conn.execute(sa.select(orders_table.c.code).where(orders_table.c.code.in_(codes)))
    return {r.code for r in found}


async def _fresh_codes(conn: AsyncConnection, n: int, taken: set[str]) -> list[str]:
    codes: set[str] = set()
    while len(codes) < n:
        batch = {new_order_code() for _ in range(n - len(codes))} - taken - codes
        codes |= batch - await _existing_codes(conn, batch)
    return sorted(codes)


async def _write(conn: AsyncConnection, imported: list[ImportedOrder], cat: Catalogue, source: str, actor: str
                 ) -> ImportReport:
    now = datetime.now(UTC)
    given = {o.code for o in imported if o.code}
    generated = iter(await _fresh_codes(conn, sum(o.code is None for o in imported), given))
    seats: Counter[tuple[str, str | None]] = Counter()
    codes: list[str] = []
    tickets = 0
    for item in imported:
        order = build_imported_order(item, cat, code=item.code or next(generated), now=now)
        data = {"file": source, "row": item.row, "tickets": len(order.tickets)}
        await db.insert_order(conn, order, [OrderEvent(type="order-imported", actor=actor, at=now, data=data)])
        for ln in item.lines:
            seats[(ln.ticket_type_id, ln.time_slot_id)] += ln.quantity
        codes.append(order.code)
        tickets += len(order.tickets)
    for (type_id, slot_id), quantity in seats.items():
        await db.adjust_inventory(conn, type_id, slot_id, quantity)
    return ImportReport(orders=len(codes), tickets=tickets, codes=codes)
