"""The store half of an order import: load what the file refers to, check, and write.

`ticketops orders import --direct` (`import_orders`) checks a whole file and writes it in one
transaction, so a file checked against one state of the store is never written over another.

An upload through the API (`POST /imports`) is checked as it arrives (`check_upload`): a
batch of rows at a time, each in a short transaction, against the store and against the rows
staged before it in `import_staging`, so neither the file nor its rows are ever held whole.
A clean file's staged rows then become the orders (codes fixed) and items of a bulk operation
(`stage_import`), and `write_staged` writes them a batch at a time for the ImportOrders
workflow; an order whose code or seats were taken since it was checked, or whose event or time
slot was called off since, is marked failed there.

Parsing and every rule about a file's content live in `ticketing/importing.py`; this
module only reads the catalogue, the taken codes and the staged rows, hands them to the
checks, and writes what it gets back.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.bulk import BulkKind, BulkStatus, ItemStatus
from ticketing.errors import NotFound
from ticketing.importing import (
    Catalogue,
    FileCheck,
    FileRow,
    ImportedOrder,
    ImportFailed,
    ImportIssue,
    ImportReport,
    ParsedFile,
    build_imported_order,
    restore_row,
    staged_order,
    validate,
)
from ticketing.issuing import new_order_code
from ticketing.models import OrderEvent
from ticketing.policies.actions import called_off_refusal
from ticketing.store import orders as db
from ticketing.store.bulk import ItemMark, create_bulk, items_in_range, mark_items, set_bulk
from ticketing.store.engine import Store
from ticketing.store.tables import bulk_items, bulk_operations, import_rows, import_staging
from ticketing.store.tables import orders as orders_table

_PIECE_BYTES = 64 * 1024  # an upload is decoded and read this much at a time, however it arrives
_STAGE_ROWS = 500  # rows checked and staged per transaction; orders made per insert
_STALE_STAGING = timedelta(hours=6)


async def import_orders(store: Store, parsed: ParsedFile, *, source: str, actor: str) -> ImportReport:
    """Import every order of a parsed file in one transaction, or none; raises ImportFailed.

    `source` (the file's name) is recorded in each order's history.
    """
    try:
        async with store.transaction() as conn:
            # The events held for share (PostgreSQL): an event or time-slot cancellation marks and chooses its
            # orders under the event's row, so this file's orders are among those chosen, or see the mark.
            cat = await _catalogue(conn, parsed.event_ids(), for_share=True)
            imported = validate(parsed, cat, await _existing_codes(conn, parsed.order_codes()))
            return await _write(conn, imported, cat, source, actor)
    except IntegrityError as err:  # a concurrent writer took a code or the last seats
        problem = "the store changed during the import; nothing was imported, run it again"
        raise ImportFailed([ImportIssue(problem)]) from err


async def _catalogue(conn: AsyncConnection, event_ids: set[str], *, for_share: bool = False) -> Catalogue:
    cat = Catalogue({}, {}, {})
    await _load_events(conn, cat, event_ids, for_share=for_share)
    return cat


async def _load_events(conn: AsyncConnection, cat: Catalogue, event_ids: set[str], *, for_share: bool = False
                       ) -> None:
    for event_id in sorted(event_ids):
        try:
            cat.events[event_id] = await db.load_event(conn, event_id, for_share=for_share)
        except NotFound:
            continue
        cat.types[event_id] = {t.id: t for t in await db.load_ticket_types(conn, event_id)}
        cat.slots[event_id] = {s.id: s for s in await db.load_time_slots(conn, event_id)}


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


class CheckedUpload(BaseModel):
    """A clean file, checked as it arrived: its rows wait in `import_staging` under `staging_id`."""

    staging_id: str
    orders: int
    tickets: int


async def check_upload(store: Store, chunks: AsyncIterable[bytes], suffix: str, staging_id: str) -> CheckedUpload:
    """Check a file as it arrives, staging its rows, without holding the file or its rows.

    Each batch of rows is checked in its own short transaction against the store and the rows
    staged before it (an order's first row), so that nothing holds the store's write lock
    while the client sends. Raises ImportFailed with the first MAX_ISSUES problems (all are
    counted). On any failure, the file's or the stream's, the staged rows are dropped.
    """
    check = FileCheck(suffix)
    cat = Catalogue({}, {}, {})
    looked_up: set[str] = set()
    await _drop_stale(store)
    try:
        batch: list[FileRow] = []
        async for chunk in chunks:
            for at in range(0, len(chunk), _PIECE_BYTES):
                batch += check.read(chunk[at:at + _PIECE_BYTES])
                if len(batch) >= _STAGE_ROWS:
                    await _stage_batch(store, check, batch, staging_id, cat, looked_up)
                    batch = []
        batch += check.read(b"", final=True)
        await _stage_batch(store, check, batch, staging_id, cat, looked_up)
        if failed := check.failure():
            raise failed
        if not check.orders:
            raise ImportFailed([ImportIssue("the file has no orders")])
    except BaseException:
        await drop_staging(store, staging_id)
        raise
    return CheckedUpload(staging_id=staging_id, orders=check.orders, tickets=check.tickets)


async def _stage_batch(store: Store, check: FileCheck, rows: list[FileRow], staging_id: str, cat: Catalogue,
                       looked_up: set[str]) -> None:
    codes, event_ids = FileCheck.lookups(rows)
    async with store.transaction() as conn:
        firsts: dict[str, FileRow] = {}
        if codes:
            found = await conn.execute(
                sa.select(import_staging.c.order_code, import_staging.c.row, import_staging.c.cells).where(
                    import_staging.c.staging_id == staging_id, import_staging.c.order_code.in_(codes),
                    import_staging.c.row == import_staging.c.first_row))
            firsts = {r.order_code: restore_row(r.row, r.cells) for r in found}
        taken = await _existing_codes(conn, codes - set(firsts))
        event_ids |= {f.values["event_id"] for f in firsts.values() if "event_id" in f.values}
        await _load_events(conn, cat, event_ids - looked_up)
        looked_up |= event_ids
        staged = check.check(rows, firsts, taken, cat)
        if staged:
            now = datetime.now(UTC)
            await conn.execute(import_staging.insert(), [
                {"staging_id": staging_id, "row": r.row, "order_code": r.code, "first_row": r.first_row,
                 "cells": r.cells, "created_at": now} for r in staged
            ])


async def drop_staging(store: Store, staging_id: str) -> None:
    async with store.transaction() as conn:
        await conn.execute(import_staging.delete().where(import_staging.c.staging_id == staging_id))


async def _drop_stale(store: Store) -> None:
    """Rows an upload left when its process died mid-request; no upload takes this long."""
    async with store.transaction() as conn:
        await conn.execute(import_staging.delete().where(
            import_staging.c.created_at < datetime.now(UTC) - _STALE_STAGING))


class StagedImport(BaseModel):
    bulk_id: str
    event_id: str
    orders: int
    tickets: int


async def stage_import(
    store: Store, checked: CheckedUpload, *, bulk_id: str, workflow_id: str, source: str, actor: str, deliver: bool
) -> StagedImport:
    """Make a checked upload's staged rows the orders (codes fixed) and items of a bulk operation.

    One transaction, reading the staged rows a page at a time in file order. A repeat with the
    same bulk id returns what the first staged. The staged rows are dropped either way.
    """
    sid = checked.staging_id
    try:
        async with store.transaction() as conn:
            existing = (
                await conn.execute(sa.select(bulk_operations.c.event_id, bulk_operations.c.params)
                                   .where(bulk_operations.c.id == bulk_id))
            ).first()
            if existing is not None:
                await conn.execute(import_staging.delete().where(import_staging.c.staging_id == sid))
                return StagedImport(bulk_id=bulk_id, event_id=existing.event_id,
                                    orders=existing.params["orders"], tickets=existing.params["tickets"])
            first = (await conn.execute(
                sa.select(import_staging.c.row, import_staging.c.cells)
                .where(import_staging.c.staging_id == sid).order_by(import_staging.c.row).limit(1))).one()
            event_id = restore_row(first.row, first.cells).values["event_id"]
            await create_bulk(
                conn, bulk_id=bulk_id, kind=BulkKind.IMPORT.value, event_id=event_id, workflow_id=workflow_id,
                created_by=actor, params={"file": source, "deliver": deliver, "orders": checked.orders,
                                          "tickets": checked.tickets, "actor": actor},
            )
            now = datetime.now(UTC)
            ready: list[tuple[str | None, list[FileRow]]] = []
            async for code, rows in _staged_orders(conn, sid):
                ready.append((code, rows))
                if len(ready) == _STAGE_ROWS:
                    await _insert_staged(conn, sid, bulk_id, ready, now)
                    ready = []
            await _insert_staged(conn, sid, bulk_id, ready, now)
            await conn.execute(import_staging.delete().where(import_staging.c.staging_id == sid))
            await set_bulk(conn, bulk_id, status=BulkStatus.RUNNING.value, prepared_at=now)
            return StagedImport(bulk_id=bulk_id, event_id=event_id, orders=checked.orders, tickets=checked.tickets)
    except IntegrityError as err:
        await drop_staging(store, sid)
        problem = "the store changed during the import; nothing was imported, run it again"
        raise ImportFailed([ImportIssue(problem)]) from err


async def _staged_orders(conn: AsyncConnection, staging_id: str) -> AsyncIterator[tuple[str | None, list[FileRow]]]:
    """(given code or None, rows) of each staged order, in file order, reading a page of rows at a time."""
    t = import_staging.c
    after = (0, 0)
    code: str | None = None
    rows: list[FileRow] = []
    while True:
        page = (await conn.execute(
            sa.select(t.row, t.first_row, t.order_code, t.cells)
            .where(t.staging_id == staging_id,
                   sa.or_(t.first_row > after[0], sa.and_(t.first_row == after[0], t.row > after[1])))
            .order_by(t.first_row, t.row).limit(_STAGE_ROWS)
        )).all()
        if not page:
            break
        for r in page:
            if rows and r.first_row != rows[0].number:
                yield code, rows
                rows = []
            code = r.order_code
            rows.append(restore_row(r.row, r.cells))
        after = (page[-1].first_row, page[-1].row)
    if rows:
        yield code, rows


async def _insert_staged(conn: AsyncConnection, staging_id: str, bulk_id: str,
                         orders: list[tuple[str | None, list[FileRow]]], now: datetime) -> None:
    if not orders:
        return
    fresh = iter(await _unused_codes(conn, sum(code is None for code, _ in orders), staging_id, bulk_id))
    made = [staged_order(rows, code or next(fresh)) for code, rows in orders]
    await conn.execute(import_rows.insert(), [
        {"bulk_id": bulk_id, "order_code": o.code, "data": o.model_dump(mode="json")} for o in made
    ])
    await conn.execute(bulk_items.insert(), [
        {"bulk_id": bulk_id, "key": o.code, "status": ItemStatus.PENDING.value, "updated_at": now} for o in made
    ])


async def _unused_codes(conn: AsyncConnection, n: int, staging_id: str, bulk_id: str) -> list[str]:
    """Generated codes that no order, no row of the file and no order staged for this import has."""
    codes: set[str] = set()
    while len(codes) < n:
        batch = {new_order_code() for _ in range(n - len(codes))} - codes
        clash = sa.union(
            sa.select(orders_table.c.code.label("code")).where(orders_table.c.code.in_(batch)),
            sa.select(import_staging.c.order_code).where(
                import_staging.c.staging_id == staging_id, import_staging.c.order_code.in_(batch)),
            sa.select(import_rows.c.order_code).where(
                import_rows.c.bulk_id == bulk_id, import_rows.c.order_code.in_(batch)),
        )
        codes |= batch - {r.code for r in await conn.execute(clash)}
    return sorted(codes)


async def write_staged(store: Store, bulk_id: str, first: int, last: int) -> dict[str, int]:
    """Write the staged orders of items first..last that are still pending; counts by item status.

    One transaction for the batch; if it is refused (a code or the last seats taken since the
    file was checked), each order is tried alone and the refused ones are marked failed. An order
    whose event or time slot was called off since the file was checked is not written: it is
    marked failed with the refusal's type (`event-cancelled`, `time-slot-cancelled`).
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
            return await _write_items(conn, bulk_id, [(i.id, staged[i.key]) for i in items], cat, source, actor)
    except IntegrityError:
        pass
    counts: Counter[str] = Counter()
    for item in items:
        try:
            async with store.transaction() as conn:
                counts.update(await _write_items(conn, bulk_id, [(item.id, staged[item.key])], cat, source, actor))
        except IntegrityError:
            async with store.transaction() as conn:
                reason = "the code or the last seats were taken after the file was checked"
                await mark_items(conn, [ItemMark(item.id, ItemStatus.FAILED, reason)])
            counts[ItemStatus.FAILED.value] += 1
    return dict(counts)


async def _write_items(
    conn: AsyncConnection, bulk_id: str, items: list[tuple[int, ImportedOrder]], cat: Catalogue, source: str,
    actor: str,
) -> dict[str, int]:
    """Write the items' orders, but not those whose event or time slot is called off now.

    The events are read again here, held for share (PostgreSQL): the catalogue was read before
    this transaction, and a cancellation marks and chooses its orders under the event's row, so an
    order written here is among those it chose, or it is refused.
    """
    now = datetime.now(UTC)
    events = {e: await db.load_event(conn, e, for_share=True) for e in sorted({i.event_id for _, i in items})}
    seats: Counter[tuple[str, str | None]] = Counter()
    marks: list[ItemMark] = []
    written: list[str] = []
    for item_id, item in items:
        order = build_imported_order(item, cat, code=item.code or "", now=now)
        if refusal := called_off_refusal(order, events[item.event_id]):
            marks.append(ItemMark(item_id, ItemStatus.FAILED, refusal.type))
            continue
        data = {"file": source, "row": item.row, "tickets": len(order.tickets), "bulk_id": bulk_id}
        await db.insert_order(conn, order, [OrderEvent(type="order-imported", actor=actor, at=now, data=data)])
        for ln in item.lines:
            seats[(ln.ticket_type_id, ln.time_slot_id)] += ln.quantity
        marks.append(ItemMark(item_id, ItemStatus.IMPORTED))
        written.append(order.code)
    for (type_id, slot_id), quantity in seats.items():
        await db.adjust_inventory(conn, type_id, slot_id, quantity)
    await mark_items(conn, marks)
    if written:
        await conn.execute(import_rows.delete().where(
            import_rows.c.bulk_id == bulk_id, import_rows.c.order_code.in_(written)))
    return dict(Counter(m.status.value for m in marks))
