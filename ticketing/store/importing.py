"""The store half of an order import: load what the file refers to, check, and write, in one transaction.

An import through the API (`POST /imports`) is checked the same way, whole, in one
transaction, and then staged instead of written (`stage_import`): its orders become the
items of a bulk operation, with their codes fixed, and `write_staged` writes them a batch
at a time for the ImportOrders workflow.

Parsing and every rule about a file's content live in `ticketing/importing.py`; this
module only reads the catalogue and the taken codes, hands them to `validate`, and
writes the orders it gets back. The checks run in the same transaction as the writes,
so a file checked against one state of the store is never written over another.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.bulk import BulkKind, BulkStatus, ItemStatus
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
from ticketing.store.bulk import ItemMark, create_bulk, items_in_range, mark_items, set_bulk
from ticketing.store.engine import Store
from ticketing.store.tables import bulk_items, bulk_operations, import_rows
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


class StagedImport(BaseModel):
    bulk_id: str
    event_id: str
    orders: int
    tickets: int


def _tickets(item: ImportedOrder) -> int:
    return sum(ln.quantity for ln in item.lines)


async def stage_import(
    store: Store, parsed: ParsedFile, *, bulk_id: str, workflow_id: str, source: str, actor: str, deliver: bool
) -> StagedImport:
    """Check the whole file against the store and stage its orders as the items of a bulk operation.

    Raises ImportFailed with every problem and stages nothing. A repeat with the same bulk id
    returns what the first staged.
    """
    try:
        async with store.transaction() as conn:
            existing = (
                await conn.execute(sa.select(bulk_operations.c.event_id, bulk_operations.c.params)
                                   .where(bulk_operations.c.id == bulk_id))
            ).first()
            if existing is not None:
                return StagedImport(bulk_id=bulk_id, event_id=existing.event_id,
                                    orders=existing.params["orders"], tickets=existing.params["tickets"])
            cat = await _catalogue(conn, parsed.event_ids())
            imported = validate(parsed, cat, await _existing_codes(conn, parsed.order_codes()))
            if not imported:
                raise ImportFailed([ImportIssue("the file has no orders")])
            given = {o.code for o in imported if o.code}
            generated = iter(await _fresh_codes(conn, sum(o.code is None for o in imported), given))
            coded = [o.model_copy(update={"code": o.code or next(generated)}) for o in imported]
            tickets = sum(_tickets(o) for o in coded)
            await create_bulk(
                conn, bulk_id=bulk_id, kind=BulkKind.IMPORT.value, event_id=coded[0].event_id,
                workflow_id=workflow_id, created_by=actor,
                params={"file": source, "deliver": deliver, "orders": len(coded), "tickets": tickets, "actor": actor},
            )
            now = datetime.now(UTC)
            for start in range(0, len(coded), 1000):
                chunk = coded[start:start + 1000]
                await conn.execute(import_rows.insert(), [
                    {"bulk_id": bulk_id, "order_code": o.code, "data": o.model_dump(mode="json")} for o in chunk
                ])
                await conn.execute(bulk_items.insert(), [
                    {"bulk_id": bulk_id, "key": o.code, "status": ItemStatus.PENDING.value, "updated_at": now}
                    for o in chunk
                ])
            await set_bulk(conn, bulk_id, status=BulkStatus.RUNNING.value, prepared_at=now)
            return StagedImport(bulk_id=bulk_id, event_id=coded[0].event_id, orders=len(coded), tickets=tickets)
    except IntegrityError as err:
        problem = "the store changed during the import; nothing was imported, run it again"
        raise ImportFailed([ImportIssue(problem)]) from err


async def write_staged(store: Store, bulk_id: str, first: int, last: int) -> dict[str, int]:
    """Write the staged orders of items first..last that are still pending; counts by item status.

    One transaction for the batch; if it is refused (a code or the last seats taken since the
    file was checked), each order is tried alone and the refused ones are marked failed.
    """
    async with store.transaction() as conn:
        params: dict[str, object] = (
            await conn.execute(sa.select(bulk_operations.c.params).where(bulk_operations.c.id == bulk_id))
        ).scalar_one()
        items = await items_in_range(conn, bulk_id, first, last, {ItemStatus.PENDING})
        if not items:
            return {}
        staged_rows = (await conn.execute(sa.select(import_rows).where(
            import_rows.c.bulk_id == bulk_id, import_rows.c.order_code.in_([i.key for i in items])))).all()
        staged = {r.order_code: ImportedOrder.model_validate(r.data) for r in staged_rows}
        cat = await _catalogue(conn, {o.event_id for o in staged.values()})
    source, actor = str(params["file"]), str(params["actor"])
    try:
        async with store.transaction() as conn:
            await _write_items(conn, bulk_id, [(i.id, staged[i.key]) for i in items], cat, source, actor)
        return {ItemStatus.IMPORTED.value: len(items)}
    except IntegrityError:
        pass
    counts: Counter[str] = Counter()
    for item in items:
        try:
            async with store.transaction() as conn:
                await _write_items(conn, bulk_id, [(item.id, staged[item.key])], cat, source, actor)
            counts[ItemStatus.IMPORTED.value] += 1
        except IntegrityError:
            async with store.transaction() as conn:
                reason = "the code or the last seats were taken after the file was checked"
                await mark_items(conn, [ItemMark(item.id, ItemStatus.FAILED, reason)])
            counts[ItemStatus.FAILED.value] += 1
    return dict(counts)


async def _write_items(
    conn: AsyncConnection, bulk_id: str, items: list[tuple[int, ImportedOrder]], cat: Catalogue, source: str,
    actor: str,
) -> None:
    now = datetime.now(UTC)
    seats: Counter[tuple[str, str | None]] = Counter()
    for _, item in items:
        order = build_imported_order(item, cat, code=item.code or "", now=now)
        data = {"file": source, "row": item.row, "tickets": len(order.tickets), "bulk_id": bulk_id}
        await db.insert_order(conn, order, [OrderEvent(type="order-imported", actor=actor, at=now, data=data)])
        for ln in item.lines:
            seats[(ln.ticket_type_id, ln.time_slot_id)] += ln.quantity
    for (type_id, slot_id), quantity in seats.items():
        await db.adjust_inventory(conn, type_id, slot_id, quantity)
    await mark_items(conn, [ItemMark(item_id, ItemStatus.IMPORTED) for item_id, _ in items])
    await conn.execute(import_rows.delete().where(
        import_rows.c.bulk_id == bulk_id, import_rows.c.order_code.in_([i.code for _, i in items])))
