"""Rows and files for the import tests: one valid order per row, two general-admission tickets."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from ticketing.importing import COLUMNS


def import_row(event_id: str, n: int, **changes: Any) -> dict[str, Any]:
    row = {
        "order_code": f"IMP{uuid.uuid4().hex[:6].upper()}{n}",
        "event_id": event_id,
        "ticket_type_id": f"{event_id}_ga",
        "time_slot_id": f"{event_id}_eve",
        "quantity": "2",
        "contact_name": f"Buyer {n}",
        "contact_email": f"buyer{n}@example.com",
        "contact_mobile": "+31 6 1234 5678",
        "payment_method": "card",
        "payment_reference": f"pi_import_{n}",
        "status": "paid",
        "service_fee": "250",
        "booking_fee": "0",
        "created_at": "2026-05-01T18:00:00+02:00",
    }
    return row | changes


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


