"""Ticket and receipt PDFs: what a door scanner and a reader get out of them."""

from __future__ import annotations

import io
import unicodedata

import pytest
from pypdf import PdfReader

from documents.ticket_pdf import render_receipt_pdf, render_ticket_pdf
from tests.documents.conftest import make_receipt, make_ticket
from tests.documents.qr import decode_qr_payloads_from_pdf


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return unicodedata.normalize("NFC", "\n".join(page.extract_text() for page in reader.pages))


def _pages(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


@pytest.mark.parametrize(
    "barcode",
    [
        "TKO-00000001-Q7ZP4K2M",
        "1234567890123",
        "ticket:a1b2c3/t-1?sig=Zx9_-.~",
        "tkt_" + "x9Y8w7V6" * 12,  # a long signed token still fits and decodes
    ],
)
def test_ticket_qr_decodes_to_exactly_the_barcode(barcode: str) -> None:
    pdf = render_ticket_pdf(make_ticket(barcode=barcode))
    assert pdf.startswith(b"%PDF-")
    assert _pages(pdf) == 1
    assert decode_qr_payloads_from_pdf(pdf) == [barcode]


def test_ticket_shows_event_type_slot_holder_order_and_barcode_text() -> None:
    text = _text(render_ticket_pdf(make_ticket()))
    for expected in (
        "Spring Gala",
        "Saturday 14 March 2026, 20:00",
        "Concert Hall",
        "Entry 19:00-19:30",
        "Adult",
        "Ada Lovelace",
        "EUR 35.00",
        "A1B2C3",
        "A1B2C3-1",  # the ticket's short code
        "TKO-00000001-Q7ZP4K2M",
    ):
        assert expected in text
    assert "T-1" not in text  # the internal ticket id is not shown


def test_ticket_without_holder_venue_or_slot() -> None:
    pdf = render_ticket_pdf(make_ticket(holder_name=None, venue=None, time_slot_label=None))
    assert "Not personalised" in _text(pdf)
    assert decode_qr_payloads_from_pdf(pdf) == ["TKO-00000001-Q7ZP4K2M"]


def test_names_outside_latin1_are_drawn_with_the_bundled_font() -> None:
    pdf = render_ticket_pdf(make_ticket(holder_name="Дмитрий Łukasiewicz", event_name="Ελλάδα"))
    text = _text(pdf)
    assert "Дмитрий Łukasiewicz" in text
    assert "Ελλάδα" in text
    assert b"DejaVu" in pdf
    assert decode_qr_payloads_from_pdf(pdf) == ["TKO-00000001-Q7ZP4K2M"]


def test_characters_the_font_lacks_become_question_marks() -> None:
    text = _text(render_ticket_pdf(make_ticket(holder_name="山田 Ōtani")))
    assert "?? Ōtani" in text


def test_long_event_name_wraps_and_stays_on_one_page() -> None:
    name = "A very long festival name that cannot fit on one line of the ticket " * 2
    pdf = render_ticket_pdf(make_ticket(event_name=name.strip()))
    assert _pages(pdf) == 1
    assert decode_qr_payloads_from_pdf(pdf) == ["TKO-00000001-Q7ZP4K2M"]


def test_receipt_lists_lines_fees_refunds_and_total() -> None:
    pdf = render_receipt_pdf(make_receipt())
    text = _text(pdf)
    for expected in (
        "Receipt",
        "A1B2C3",
        "Ada Lovelace",
        "Adult ticket",
        "EUR 70.00",
        "Service fee",
        "Refund: adult ticket",
        "-EUR 35.00",
        "EUR 37.50",
        "Visa ending 4242",
    ):
        assert expected in text
    assert decode_qr_payloads_from_pdf(pdf) == []


def test_receipt_is_reproducible_and_long_orders_break_pages() -> None:
    assert render_receipt_pdf(make_receipt()) == render_receipt_pdf(make_receipt())
    many = make_receipt().lines * 80
    pdf = render_receipt_pdf(make_receipt(lines=many, refunds=[]))
    assert _pages(pdf) > 1
