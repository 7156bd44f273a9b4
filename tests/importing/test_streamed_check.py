"""An upload checked as it arrives (`check_upload`): the answer the whole file gets, however the
bytes are cut and however the rows fall into batches, without the file or its rows held whole.

The batches here are two rows, so that an order's rows, a quota and the problems all span them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.importing.conftest import base_row, seed_catalogue, snapshot
from ticketing import import_reading
from ticketing.import_reading import CsvRecords, JsonRecords
from ticketing.importing import COLUMNS, MAX_ISSUES, ImportedOrder, ImportFailed, parse_text
from ticketing.store import importing as store_importing
from ticketing.store.engine import Store
from ticketing.store.importing import CheckedUpload, check_upload, import_orders, stage_import
from ticketing.store.tables import bulk_items, import_rows, import_staging


@pytest.fixture(autouse=True)
def _two_rows_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_importing, "_STAGE_ROWS", 2)
    monkeypatch.setattr(store_importing, "_PIECE_BYTES", 5)


def _csv(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS, *, newline: str = "\r\n") -> str:
    """CSV as a spreadsheet writes it: every cell quoted when it must be, CRLF line ends."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator=newline, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at:at + size]


async def _staged_count(store: Store) -> int:
    async with store.transaction() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(import_staging))).scalar_one()


async def _streamed_issues(store: Store, data: bytes, suffix: str, size: int) -> tuple[list[str], int]:
    with pytest.raises(ImportFailed) as info:
        await check_upload(store, _chunks(data, size), suffix, f"t-{size}")
    return [str(i) for i in info.value.issues], info.value.total


async def _whole_issues(store: Store, text: str, suffix: str) -> list[str]:
    with pytest.raises(ImportFailed) as info:
        await import_orders(store, parse_text(text, suffix), source="whole", actor="t")
    return [str(i) for i in info.value.issues]


# --- the readers: records do not depend on where the text is cut ---------------------------------------------


def _pieces(text: str, size: int) -> list[str]:
    return [text[at:at + size] for at in range(0, len(text), size)] or [""]


def _read_csv(pieces: list[str]) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    reader = CsvRecords()
    records = [r for piece in pieces for r in reader.feed(piece)] + reader.feed("", final=True)
    return reader.header, records


def _read_json(pieces: list[str]) -> tuple[str | None, list[tuple[int, Any]]]:
    reader = JsonRecords()
    records = [r for piece in pieces for r in reader.feed(piece)] + reader.feed("", final=True)
    return reader.error, records


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_csv_records_do_not_depend_on_where_the_text_is_cut(size: int) -> None:
    text = ('name,note,n\r\n"Ada ""the Countess"" Lovelace","two\r\nlines, and a comma",1\r\n'
            '\r\n'  # a blank row keeps its number
            'Grace,"ends in CR\r",2\r\nÉmile,"\n",3\nLast,no newline at the end,4')
    whole = _read_csv([text])
    assert whole[0] == ["name", "note", "n"]
    assert whole[1] == [
        (1, ['Ada "the Countess" Lovelace', "two\r\nlines, and a comma", "1"]),
        (3, ["Grace", "ends in CR\r", "2"]),
        (4, ["Émile", "\n", "3"]),
        (5, ["Last", "no newline at the end", "4"]),
    ]
    assert _read_csv(_pieces(text, size)) == whole


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_json_records_do_not_depend_on_where_the_text_is_cut(size: int) -> None:
    text = (' [ {"quantity": 12345, "name": "Ada \\"A\\" \\u00e9"} ,\n  ["not", "an", "object"], 678 ,'
            '{"nested": {"a": [1, 2]}}\n ] \n')
    assert _read_json(_pieces(text, size)) == (None, list(enumerate(json.loads(text), start=1)))


@pytest.mark.parametrize("text", [
    "", "[", "[1 2]", "[1,]", '[{"a": 1},\n {"b": 2] ', '[{"a":1}] x', '[{"a": "unterminated',
    '[\n{"a": 1},\n{"b" 2}]', '{"order_code": 1}x',
])
@pytest.mark.parametrize("size", [1, 4, 1000])
def test_broken_json_is_reported_as_json_would_report_it(text: str, size: int) -> None:
    error, _ = _read_json(_pieces(text, size))
    with pytest.raises(json.JSONDecodeError) as info:
        json.loads(text)
    if text.startswith("{"):  # not a list at all: said so before any JSON error
        assert error is None
    else:
        assert error == str(info.value)


def test_an_undecodable_json_row_is_not_waited_for_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_reading, "MAX_JSON_ROW_CHARS", 10)
    reader = JsonRecords()
    assert reader.feed('[{"a": 1}, {"b" 2, "c": "more text than ten characters"') == [(1, {"a": 1})]
    assert reader.error == "Expecting ':' delimiter: line 1 column 17 (char 16)"


# --- the streamed check against the store ----------------------------------------------------------------------


def _broken_rows() -> list[dict[str, Any]]:
    """Every kind of problem, spread so that orders, quotas and errors cross the two-row batches."""
    return [
        base_row(order_code="far-1", contact_name="Ada\r\nLovelace"),
        base_row(contact_email="not-an-address", quantity="0"),
        base_row(order_code="TAKEN-BY-SEED"),  # replaced by the seeded order's code
        base_row(event_id="evt_hall", ticket_type_id="evt_hall_ga", time_slot_id="", quantity="3",
                 payment_method="free", payment_reference="", service_fee="", booking_fee=""),
        base_row(event_id="evt_nope"),
        {**base_row(), "contact_mobile": ""},
        base_row(event_id="evt_gone", ticket_type_id="evt_gone_ga", time_slot_id=""),
        base_row(order_code="far-1", contact_email="other@example.com", quantity="1"),  # differs from row 1
        base_row(event_id="evt_hall", ticket_type_id="evt_hall_ga", time_slot_id="", quantity="2",
                 payment_method="free", payment_reference="", service_fee="", booking_fee=""),  # 5 of 4 left
        base_row(time_slot_id="evt_concert_nope", card_last4="42"),
        base_row(order_code="bad code!"),
        base_row(order_code="far-1", quantity="1"),
    ]


@pytest.mark.parametrize("size", [3, 64, 100_000])
async def test_a_streamed_csv_gets_the_problems_the_whole_file_gets(any_store: Store, size: int) -> None:
    seeded = await seed_catalogue(any_store)
    rows = [r if r["order_code"] != "TAKEN-BY-SEED" else {**r, "order_code": seeded.existing_code}
            for r in _broken_rows()]
    text = _csv(rows, (*COLUMNS, "extra"))
    before = await snapshot(any_store)

    streamed, total = await _streamed_issues(any_store, text.encode(), ".csv", size)

    whole = await _whole_issues(any_store, text, ".csv")
    assert streamed == whole and total == len(whole)
    assert {i.split(":")[0] for i in whole} >= {
        "field extra", "row 2, field contact_email", "row 3, field order_code", "row 5, field event_id",
        "row 6, field contact_mobile", "row 7, field event_id", "row 8, field contact_email",
        "row 9, field quantity", "row 10, field time_slot_id", "row 11, field order_code"}
    assert await snapshot(any_store) == before and await _staged_count(any_store) == 0


@pytest.mark.parametrize("size", [2, 50])
async def test_a_streamed_json_list_gets_the_problems_the_whole_file_gets(any_store: Store, size: int) -> None:
    await seed_catalogue(any_store)
    rows: list[Any] = _broken_rows()
    rows[5] = {**rows[5], "quantity": 2.5, "surprise": 1}
    rows.insert(3, ["not", "an", "object"])
    rows[0] = {**rows[0], "contact_name": "Ada \u0000 Lovelace"}
    text = json.dumps(rows, indent=1, ensure_ascii=False)

    streamed, _ = await _streamed_issues(any_store, text.encode(), ".json", size)

    assert streamed == await _whole_issues(any_store, text, ".json")
    assert "row 1, field contact_name: the text holds a control character (U+0000) at position 4" in streamed
    assert "row 4: expected an object of column names" in streamed
    assert "field surprise: unknown column" in streamed
    assert await _staged_count(any_store) == 0


async def test_a_clean_upload_becomes_orders_in_file_order_with_an_orders_rows_joined(any_store: Store) -> None:
    await seed_catalogue(any_store)
    rows = [
        base_row(order_code="split-1", contact_name="Zoë Ünicode"),
        base_row(contact_email="grace@example.org"),
        base_row(order_code="next-1"),
        base_row(order_code="split-1", ticket_type_id="evt_concert_vip", quantity="1", contact_name="Zoë Ünicode"),
    ]
    data = ("\ufeff" + _csv(rows)).encode()  # a spreadsheet's BOM, cut in the middle below

    checked = await check_upload(any_store, _chunks(data, 2), ".csv", "clean")

    assert checked == CheckedUpload(staging_id="clean", orders=3, tickets=7)
    assert await _staged_count(any_store) == 4
    staged = await stage_import(any_store, checked, bulk_id="imp-clean", workflow_id="import/clean",
                                source="clean.csv", actor="t", deliver=False)
    assert (staged.event_id, staged.orders, staged.tickets) == ("evt_concert", 3, 7)
    async with any_store.transaction() as conn:
        keys = [r.key for r in await conn.execute(
            sa.select(bulk_items.c.key).where(bulk_items.c.bulk_id == "imp-clean").order_by(bulk_items.c.id))]
        data_by_code = {r.order_code: ImportedOrder.model_validate(r.data) for r in await conn.execute(
            sa.select(import_rows).where(import_rows.c.bulk_id == "imp-clean"))}
    assert keys[0] == "SPLIT-1" and keys[2] == "NEXT-1" and keys[1] not in ("SPLIT-1", "NEXT-1")
    split = data_by_code["SPLIT-1"]
    assert (split.row, split.contact.name) == (1, "Zoë Ünicode")
    assert [(ln.row, ln.ticket_type_id, ln.quantity) for ln in split.lines] == [
        (1, "evt_concert_ga", 2), (4, "evt_concert_vip", 1)]
    assert data_by_code[keys[1]].contact.email == "grace@example.org"
    assert await _staged_count(any_store) == 0

    again = await check_upload(any_store, _chunks(data, 4096), ".csv", "again")
    repeat = await stage_import(any_store, again, bulk_id="imp-clean", workflow_id="import/clean",
                                source="clean.csv", actor="t", deliver=False)
    assert repeat == staged and await _staged_count(any_store) == 0


async def test_problems_past_the_cap_are_counted_not_listed(store: Store) -> None:
    await seed_catalogue(store)
    rows = [base_row(contact_email=f"nobody{n}") for n in range(MAX_ISSUES + 150)]

    text = _csv(rows, (*COLUMNS, "extra"))

    listed, total = await _streamed_issues(store, text.encode(), ".csv", 64 * 1024)

    whole = await _whole_issues(store, text, ".csv")  # 1150 emails, 1 column, and the quotas
    assert (len(listed), total) == (MAX_ISSUES, len(whole)) and total > MAX_ISSUES + 150
    assert listed == whole[:MAX_ISSUES]
    assert listed[0] == "field extra: unknown column"
    assert listed[1] == "row 1, field contact_email: not an email address"
    assert await _staged_count(store) == 0


async def test_a_stream_that_breaks_off_or_is_not_utf8_leaves_nothing_staged(store: Store) -> None:
    await seed_catalogue(store)
    data = _csv([base_row() for _ in range(6)]).encode()

    async def broken() -> AsyncIterator[bytes]:
        yield data[: len(data) // 2]
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        await check_upload(store, broken(), ".csv", "broken")
    assert await _staged_count(store) == 0

    latin1 = _csv([base_row() for _ in range(4)] + [base_row(contact_name="Zoë")]).encode("latin-1")
    with pytest.raises(ImportFailed) as info:
        await check_upload(store, _chunks(latin1, 100), ".csv", "latin1")
    assert info.value.detail == "the file is not UTF-8 text"
    assert await _staged_count(store) == 0


async def test_rows_left_by_a_dead_upload_are_dropped_by_the_next(store: Store) -> None:
    await seed_catalogue(store)
    async with store.transaction() as conn:
        await conn.execute(import_staging.insert().values(
            staging_id="dead", row=1, order_code=None, first_row=1, cells={},
            created_at=datetime.now(UTC) - timedelta(days=1)))
    await check_upload(store, _chunks(_csv([base_row()]).encode(), 1000), ".csv", "alive")
    async with store.transaction() as conn:
        left = {r.staging_id for r in await conn.execute(sa.select(import_staging.c.staging_id))}
    assert left == {"alive"}
