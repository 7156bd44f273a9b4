"""An import never sells into a cancelled time slot (or event): refused when checked, and not written
when the slot is called off between the check and the write (`time-slot-cancelled` on the item)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.importing.conftest import base_row, seed_catalogue, snapshot, write_csv
from ticketing.importing import COLUMNS, ImportFailed, parse_file
from ticketing.store.bulk import mark_time_slot_cancelled
from ticketing.store.engine import Store
from ticketing.store.importing import check_upload, import_orders, stage_import, write_staged
from ticketing.store.orders import load_time_slots
from ticketing.store.tables import bulk_items, import_rows, orders

EVE, LATE = "evt_concert_eve", "evt_concert_late"


async def _call_off(store: Store, slot: str = EVE) -> None:
    async with store.transaction() as conn:
        await mark_time_slot_cancelled(conn, "evt_concert", slot)


async def _chunks(rows: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    yield out.getvalue().encode()


async def test_a_direct_import_into_a_cancelled_slot_is_refused_and_writes_nothing(
    any_store: Store, tmp_path: Path
) -> None:
    await seed_catalogue(any_store)
    await _call_off(any_store)
    path = write_csv(tmp_path / "o.csv", [base_row(time_slot_id=LATE), base_row(), base_row(status="reserved")])
    before = await snapshot(any_store)
    with pytest.raises(ImportFailed) as info:
        await import_orders(any_store, parse_file(path), source=path.name, actor="clerk")
    assert [str(i) for i in info.value.issues] == [
        f"row 2, field time_slot_id: time slot {EVE} is cancelled",
        f"row 3, field time_slot_id: time slot {EVE} is cancelled",  # a reservation is a sale too
    ]
    assert await snapshot(any_store) == before

    clean = write_csv(tmp_path / "late.csv", [base_row(time_slot_id=LATE)])  # the event goes on
    report = await import_orders(any_store, parse_file(clean), source=clean.name, actor="clerk")
    assert report.orders == 1


async def test_an_upload_into_a_cancelled_slot_is_refused_as_it_streams(any_store: Store) -> None:
    await seed_catalogue(any_store)
    await _call_off(any_store)
    with pytest.raises(ImportFailed) as info:
        await check_upload(any_store, _chunks([base_row(time_slot_id=LATE), base_row()]), ".csv", "s-1")
    assert [str(i) for i in info.value.issues] == [f"row 2, field time_slot_id: time slot {EVE} is cancelled"]


async def test_an_order_whose_slot_is_called_off_after_the_check_is_not_written(any_store: Store) -> None:
    await seed_catalogue(any_store)
    rows = [base_row(order_code="IN-EVE"), base_row(order_code="IN-LATE", time_slot_id=LATE)]
    checked = await check_upload(any_store, _chunks(rows), ".csv", "s-2")
    await stage_import(any_store, checked, bulk_id="imp-1", workflow_id="import/1", source="o.csv", actor="t",
                       deliver=False)
    await _call_off(any_store)  # the operator cancels the evening while the import waits for its batches
    async with any_store.transaction() as conn:
        sold_before = {s.id: s.sold for s in await load_time_slots(conn, "evt_concert")}
        first, last = (await conn.execute(sa.select(sa.func.min(bulk_items.c.id), sa.func.max(bulk_items.c.id))
                                          .where(bulk_items.c.bulk_id == "imp-1"))).one()

    assert await write_staged(any_store, "imp-1", first, last) == {"failed": 1, "imported": 1}

    async with any_store.transaction() as conn:
        items = {r.key: (r.status, r.reason) for r in await conn.execute(
            sa.select(bulk_items).where(bulk_items.c.bulk_id == "imp-1"))}
        written = set((await conn.execute(sa.select(orders.c.code))).scalars())
        sold = {s.id: s.sold for s in await load_time_slots(conn, "evt_concert")}
        kept = set((await conn.execute(sa.select(import_rows.c.order_code))).scalars())
    assert items == {"IN-EVE": ("failed", "time-slot-cancelled"), "IN-LATE": ("imported", None)}
    assert "IN-EVE" not in written and "IN-LATE" in written
    assert sold == {EVE: sold_before[EVE], LATE: sold_before[LATE] + 2}
    assert kept == {"IN-EVE"}  # left as a failed item's row is left

    # A repeat of the batch (the activity retried) changes nothing.
    assert await write_staged(any_store, "imp-1", first, last) == {}
