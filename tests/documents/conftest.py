"""Builders for the documents tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from documents.models import ReceiptDocument, ReceiptLine, TicketDocument


def make_ticket(**changes: Any) -> TicketDocument:
    fields: dict[str, Any] = {
        "order_code": "A1B2C3",
        "ticket_id": "T-1",
        "ticket_code": "A1B2C3-1",
        "barcode": "TKO-00000001-Q7ZP4K2M",
        "event_name": "Spring Gala",
        "event_starts_at": datetime(2026, 3, 14, 20, 0, tzinfo=UTC),
        "venue": "Concert Hall",
        "time_slot_label": "Entry 19:00-19:30",
        "ticket_type": "Adult",
        "holder_name": "Ada Lovelace",
        "price_display": "EUR 35.00",
    }
    fields.update(changes)
    return TicketDocument(**fields)


def make_receipt(**changes: Any) -> ReceiptDocument:
    fields: dict[str, Any] = {
        "order_code": "A1B2C3",
        "issued_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        "buyer_name": "Ada Lovelace",
        "lines": [ReceiptLine(description="Adult ticket", quantity=2,
                              unit_price_display="EUR 35.00", total_display="EUR 70.00")],
        "fees": [ReceiptLine(description="Service fee", quantity=1,
                             unit_price_display="EUR 2.50", total_display="EUR 2.50")],
        "total_display": "EUR 37.50",
        "payment_method": "Visa ending 4242",
        "refunds": [ReceiptLine(description="Refund: adult ticket", quantity=1,
                                unit_price_display="-EUR 35.00", total_display="-EUR 35.00")],
    }  # fmt: skip
    fields.update(changes)
    return ReceiptDocument(**fields)
