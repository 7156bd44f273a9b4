"""Importing orders: valid files land whole; each broken rule names its row and field and
imports nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.importing.conftest import base_row, seed_catalogue, snapshot, write_csv, write_json
from ticketing.importing import COLUMNS, ImportFailed, ImportReport, parse_file, parse_orders
from ticketing.models import FeeKind, PaymentMethod
from ticketing.states import OrderStatus, PaymentStatus
from ticketing.store.engine import Store
from ticketing.store.importing import import_orders
from ticketing.store.orders import load_history, load_orders, load_ticket_types, load_time_slots


async def _import(store: Store, path: Path, *, actor: str) -> ImportReport:
    return await import_orders(store, parse_file(path), source=path.name, actor=actor)


async def _refused(store: Store, path: Path) -> list[str]:
    """The import's messages, after checking it wrote nothing."""
    before = await snapshot(store)
    with pytest.raises(ImportFailed) as info:
        await _import(store, path, actor="clerk")
    assert await snapshot(store) == before
    return [str(i) for i in info.value.issues]


async def test_csv_import_writes_orders_tickets_inventory_and_history(
    any_store: Store, tmp_path: Path
) -> None:
    await seed_catalogue(any_store)
    rows = [
        base_row(order_code="imp-1"),
        base_row(order_code="imp-1", ticket_type_id="evt_concert_vip", quantity="1"),
        base_row(payment_method="invoice", payment_reference="", status="reserved",
                 time_slot_id="evt_concert_late", quantity="3", service_fee="", booking_fee="",
                 created_at="", contact_email="Grace@Example.org"),
        base_row(event_id="evt_hall", ticket_type_id="evt_hall_ga", time_slot_id="", quantity="1",
                 payment_method="free", payment_reference="", service_fee="", booking_fee=""),
    ]
    report = await _import(any_store, write_csv(tmp_path / "o.csv", rows), actor="clerk")

    assert (report.orders, report.tickets) == (3, 7)
    assert report.codes[0] == "IMP-1"
    async with any_store.transaction() as conn:
        paid, reserved, free = await load_orders(conn, report.codes)
        history = await load_history(conn, "IMP-1")
        types = {t.id: t.sold for t in await load_ticket_types(conn, "evt_concert")}
        slots = {s.id: s.sold for s in await load_time_slots(conn, "evt_concert")}
        hall = await load_ticket_types(conn, "evt_hall")
    assert [(t.ticket_type_id, t.time_slot_id) for t in paid.tickets] == [
        ("evt_concert_ga", "evt_concert_eve"), ("evt_concert_ga", "evt_concert_eve"),
        ("evt_concert_vip", "evt_concert_eve")]
    assert paid.payment.amount.amount == 2 * 3500 + 9000 + 250 + 100
    assert (paid.payment.reference, paid.payment.status) == ("pi_import_1", PaymentStatus.SUCCEEDED)
    assert paid.created_at == datetime(2026, 5, 1, 16, tzinfo=UTC)
    # The concert's default policy keeps the service fee and refunds the booking fee.
    assert {f.kind: f.refundable for f in paid.fees} == {FeeKind.SERVICE: False, FeeKind.BOOKING: True}
    assert [(h.type, h.actor, h.data["row"]) for h in history] == [("order-imported", "clerk", 1)]
    assert (reserved.status, reserved.payment.status) == (OrderStatus.RESERVED, PaymentStatus.PENDING)
    assert reserved.contact.email == "grace@example.org"
    assert reserved.payment.amount.amount == 3 * 3500
    assert len(reserved.code) == 8  # generated
    assert (free.payment.method, free.payment.amount.amount) == (PaymentMethod.FREE, 0)
    assert types == {"evt_concert_ga": 5, "evt_concert_vip": 1}
    assert slots == {"evt_concert_eve": 3, "evt_concert_late": 3}
    assert hall[0].sold == 2 + 1


async def test_json_import_takes_fee_refundability_from_the_event(any_store: Store, tmp_path: Path) -> None:
    await seed_catalogue(any_store)
    rows = [
        {"order_code": "J-1", "event_id": "evt_hall", "ticket_type_id": "evt_hall_ga", "quantity": 2,
         "contact_name": "Ada", "contact_email": "ada@example.com", "contact_mobile": "+3161234567",
         "payment_method": "wallet", "payment_reference": "pi_wallet", "service_fee": 300,
         "booking_fee": 120, "time_slot_id": None},
        {"order_code": "J-2", "event_id": "evt_club", "ticket_type_id": "evt_club_ga", "quantity": 2,
         "time_slot_id": "evt_club_night", "contact_name": "Alan", "contact_email": "alan@example.org",
         "contact_mobile": "020 555 0101", "payment_method": "voucher", "status": "paid"},
    ]
    report = await _import(any_store, write_json(tmp_path / "o.json", rows), actor="api")

    assert (report.orders, report.tickets, report.codes) == (2, 4, ["J-1", "J-2"])
    async with any_store.transaction() as conn:
        hall_order, club_order = await load_orders(conn, ["J-1", "J-2"])
        club_slots = await load_time_slots(conn, "evt_club")
        history = await load_history(conn, "J-2")
    # The hall refunds service fees and keeps booking fees: the opposite of the default.
    assert {f.kind: (f.amount.amount, f.refundable) for f in hall_order.fees} == {
        FeeKind.SERVICE: (300, True), FeeKind.BOOKING: (120, False)}
    assert hall_order.payment.amount.amount == 2 * 2000 + 300 + 120
    assert hall_order.payment.amount.currency == "EUR"
    assert club_order.fees == []
    assert club_slots[0].sold == 1 + 2
    assert [(h.type, h.actor) for h in history] == [("order-imported", "api")]


async def test_parse_groups_rows_of_one_code_into_one_order(tmp_path: Path) -> None:
    rows = [base_row(order_code="A"), base_row(), base_row(order_code="a", quantity="1")]
    parsed = parse_orders(write_csv(tmp_path / "o.csv", rows))
    assert [(o.code, o.row, [(ln.row, ln.quantity) for ln in o.lines]) for o in parsed] == [
        ("A", 1, [(1, 2), (3, 1)]), (None, 2, [(2, 2)])]


BAD_ROWS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown event", {"event_id": "evt_nope"}, "row 2, field event_id: no event evt_nope"),
    ("cancelled event", {"event_id": "evt_gone", "ticket_type_id": "evt_gone_ga", "time_slot_id": ""},
     "row 2, field event_id: event evt_gone is cancelled"),
    ("unknown ticket type", {"ticket_type_id": "evt_concert_box"},
     "row 2, field ticket_type_id: no ticket type evt_concert_box in event evt_concert"),
    ("ticket type of another event", {"ticket_type_id": "evt_hall_ga"},
     "row 2, field ticket_type_id: no ticket type evt_hall_ga in event evt_concert"),
    ("unknown slot", {"time_slot_id": "evt_club_night"},
     "row 2, field time_slot_id: no time slot evt_club_night in event evt_concert"),
    ("slot missing", {"time_slot_id": ""},
     "row 2, field time_slot_id: required: event evt_concert has time slots "
     "(evt_concert_eve, evt_concert_late)"),
    ("zero quantity", {"quantity": "0"}, "row 2, field quantity: must be a positive whole number"),
    ("fractional quantity", {"quantity": "1.5"}, "row 2, field quantity: must be a positive whole number"),
    ("negative quantity", {"quantity": "-2"}, "row 2, field quantity: must be a positive whole number"),
    ("no name", {"contact_name": " "}, "row 2, field contact_name: required"),
    ("bad email", {"contact_email": "ada.example.com"}, "row 2, field contact_email: not an email address"),
    ("bad mobile", {"contact_mobile": "call me"}, "row 2, field contact_mobile: not a phone number"),
    ("unknown method", {"payment_method": "cash"},
     "row 2, field payment_method: must be one of card, wallet, invoice, voucher, free"),
    ("card without reference", {"payment_reference": ""},
     "row 2, field payment_reference: required for card payments"),
    ("wallet without reference", {"payment_method": "wallet", "payment_reference": ""},
     "row 2, field payment_reference: required for wallet payments"),
    ("unknown status", {"status": "refunded"}, "row 2, field status: must be paid or reserved"),
    ("fee in euros", {"service_fee": "2.50"},
     "row 2, field service_fee: must be whole minor units (cents), >= 0"),
    ("negative fee", {"booking_fee": "-100"},
     "row 2, field booking_fee: must be whole minor units (cents), >= 0"),
    ("free order with fees", {"payment_method": "free", "payment_reference": "", "booking_fee": "100",
                              "service_fee": "0"},
     "row 2, field booking_fee: a free order carries no fees"),
    ("date without zone", {"created_at": "2026-05-01T18:00:00"},
     "row 2, field created_at: needs a time zone, e.g. Z or +02:00"),
    ("not a date", {"created_at": "yesterday"}, "row 2, field created_at: not an ISO 8601 date and time"),
    ("bad order code", {"order_code": "A/1"},
     "row 2, field order_code: use up to 32 letters, digits, - or _"),
]


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in BAD_ROWS], ids=[c[0] for c in BAD_ROWS])
async def test_a_broken_rule_names_row_and_field_and_imports_nothing(
    store: Store, csv_file: Callable[..., Path], change: dict[str, Any], message: str
) -> None:
    await seed_catalogue(store)
    assert await _refused(store, csv_file([base_row(), base_row(**change)])) == [message]


async def test_an_order_code_in_the_store_is_refused(store: Store, csv_file: Callable[..., Path]) -> None:
    catalogue = await seed_catalogue(store)
    path = csv_file([base_row(), base_row(order_code=catalogue.existing_code)])
    assert await _refused(store, path) == [
        f"row 2, field order_code: order {catalogue.existing_code} exists already"]


async def test_rows_of_one_order_must_agree(store: Store, csv_file: Callable[..., Path]) -> None:
    await seed_catalogue(store)
    rows = [base_row(order_code="X1"), base_row(order_code="X1", ticket_type_id="evt_concert_vip",
                                                contact_email="other@example.com", status="reserved")]
    assert await _refused(store, csv_file(rows)) == [
        "row 2, field contact_email: differs from row 1, the first row of order X1",
        "row 2, field status: differs from row 1, the first row of order X1",
    ]


async def test_quotas_count_the_whole_file(store: Store, csv_file: Callable[..., Path]) -> None:
    await seed_catalogue(store)
    hall = {"event_id": "evt_hall", "ticket_type_id": "evt_hall_ga", "time_slot_id": ""}
    club = {"event_id": "evt_club", "ticket_type_id": "evt_club_ga", "time_slot_id": "evt_club_night"}
    rows = [base_row(**hall, quantity="3"), base_row(**club, quantity="1"),
            base_row(**hall, quantity="1"), base_row(**club, quantity="2"), base_row(**hall, quantity="1")]
    # Hall: quota 6, sold 2, so 4 left. Club night: capacity 3, sold 1, so 2 left.
    assert await _refused(store, csv_file(rows)) == [
        "row 4, field quantity: time slot evt_club_night has 2 left; the file asks for 3 up to this row",
        "row 5, field quantity: ticket type evt_hall_ga has 4 left; the file asks for 5 up to this row",
    ]


async def test_every_error_of_a_file_is_reported(store: Store, tmp_path: Path) -> None:
    await seed_catalogue(store)
    rows = [
        base_row(),
        base_row(contact_email="nope", quantity="many"),
        base_row(),
        base_row(event_id="evt_nope", payment_method="cheque"),
        base_row(time_slot_id="evt_concert_dawn", created_at="soon"),
    ]
    assert await _refused(store, write_csv(tmp_path / "o.csv", rows)) == [
        "row 2, field contact_email: not an email address",
        "row 2, field quantity: must be a positive whole number",
        "row 4, field event_id: no event evt_nope",
        "row 4, field payment_method: must be one of card, wallet, invoice, voucher, free",
        "row 5, field created_at: not an ISO 8601 date and time",
        "row 5, field time_slot_id: no time slot evt_concert_dawn in event evt_concert",
    ]


async def test_columns_are_checked_once_for_the_file(store: Store, csv_file: Callable[..., Path]) -> None:
    await seed_catalogue(store)
    columns = (*[c for c in COLUMNS if c != "contact_email"], "colour")
    path = csv_file([base_row(colour="red"), base_row(colour="blue")], columns)
    assert await _refused(store, path) == [
        "field contact_email: the column is missing",
        "field colour: unknown column",
    ]


async def test_rows_are_numbered_as_in_a_spreadsheet(store: Store, tmp_path: Path) -> None:
    """A blank line keeps its number, and a quoted cell may span lines, as in a spreadsheet."""
    await seed_catalogue(store)
    path = write_csv(tmp_path / "o.csv", [base_row(contact_name="Ada\nLovelace"), {}, base_row(quantity="x")])
    assert await _refused(store, path) == ["row 3, field quantity: must be a positive whole number"]


async def test_json_rows_are_objects_with_scalar_values(store: Store, tmp_path: Path) -> None:
    await seed_catalogue(store)
    good = base_row()
    rows: list[Any] = [good, ["not", "an", "object"], {**good, "quantity": 2.5}, {**good, "quantity": True}]
    assert await _refused(store, write_json(tmp_path / "o.json", rows)) == [
        "row 2: expected an object of column names",
        "row 3, field quantity: expected text or a whole number",
        "row 4, field quantity: expected text or a whole number",
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("o.csv", "", "file: the file has no data rows"),
        ("o.json", "{\"order_code\": 1}", "file: expected a JSON list of objects, one per row"),
        ("o.json", "[{", "file: not valid JSON: Expecting property name enclosed in double quotes: "
                         "line 1 column 3 (char 2)"),
        ("o.xlsx", "x", "file: expected a .csv or .json file"),
    ],
)
async def test_unreadable_files_are_refused(
    store: Store, tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert await _refused(store, path) == [message]


async def test_a_value_that_does_not_parse_is_not_also_reported_as_differing(
    store: Store, csv_file: Callable[..., Path]
) -> None:
    await seed_catalogue(store)
    rows = [base_row(order_code="X2"), base_row(order_code="X2", service_fee="2.50")]
    assert await _refused(store, csv_file(rows)) == [
        "row 2, field service_fee: must be whole minor units (cents), >= 0"]
