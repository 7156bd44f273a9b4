"""The pure half of an import: parse a file's text and check it against a catalogue, no store.

This is what a caller other than the CLI (an upload through the API) builds on, so it must
report every problem by row and field on its own, and build the orders the store then writes.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.builders import NOW, make_event
from tests.importing.conftest import base_row
from ticketing.importing import COLUMNS, Catalogue, ImportFailed, build_imported_order, parse_text, validate
from ticketing.models import EventPolicy, FeeKind


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _catalogue(ga_left: int = 1000) -> Catalogue:
    event, types, slots = make_event("evt_concert", policy=EventPolicy(refund_service_fees=True))
    types[0] = types[0].model_copy(update={"sold": types[0].quota - ga_left})
    return Catalogue(
        events={event.id: event},
        types={event.id: {t.id: t for t in types}},
        slots={event.id: {s.id: s for s in slots}},
    )


def test_every_problem_of_form_and_catalogue_is_reported_at_once_by_row_and_field() -> None:
    parsed = parse_text(_csv([
        base_row(order_code="TAKEN"),
        base_row(contact_email="not-an-address", quantity="2"),
        base_row(event_id="evt_nope"),
        base_row(quantity="3"),
    ]), ".csv")

    with pytest.raises(ImportFailed) as info:
        validate(parsed, _catalogue(ga_left=5), taken={"TAKEN", "OTHER"})

    assert [str(i) for i in info.value.issues] == [
        "row 1, field order_code: order TAKEN exists already",
        "row 2, field contact_email: not an email address",
        "row 3, field event_id: no event evt_nope",
        "row 4, field quantity: ticket type evt_concert_ga has 5 left; the file asks for 7 up to this row",
    ]


def test_a_valid_file_gives_orders_with_fees_as_the_events_policy_says() -> None:
    parsed = parse_text(_csv([base_row(order_code="imp-1"), base_row(order_code="imp-1", quantity="1")]), ".csv")
    cat = _catalogue()

    (item,) = validate(parsed, cat, taken=set())
    order = build_imported_order(item, cat, code=item.code or "GENERATED", now=NOW)

    assert (order.code, len(order.tickets)) == ("IMP-1", 3)
    assert {f.kind: (f.amount.amount, f.refundable) for f in order.fees} == {
        FeeKind.SERVICE: (250, True), FeeKind.BOOKING: (100, True)}


def test_json_text_parses_like_a_file() -> None:
    parsed = parse_text('[{"event_id": "evt_concert"}]', ".json")

    assert parsed.event_ids() == {"evt_concert"}
    assert "row 1, field ticket_type_id: required" in [str(i) for i in parsed.issues]
