"""A realistic context for every email template, shared by the template tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

STARTS = datetime(2026, 3, 14, 20, 0, tzinfo=UTC)

CONTEXTS: dict[str, dict[str, Any]] = {
    "tickets": {
        "order_code": "A1B2C3",
        "event_name": "Spring Gala",
        "event_starts_at": STARTS,
        "venue": "Concert Hall",
        "buyer_name": "Ada Lovelace",
        "tickets": [
            {"ticket_type": "Adult", "holder_name": "Ada Lovelace", "time_slot_label": None,
             "ticket_code": "A1B2C3-1", "event_starts_at": STARTS},
            {"ticket_type": "Child", "holder_name": None, "time_slot_label": "20:00 entry",
             "ticket_code": "A1B2C3-2", "event_starts_at": STARTS},
        ],
        "return_link": "https://tickets.example/returns/abc.def",
    },
    "refund_receipt": {
        "order_code": "A1B2C3",
        "event_name": "Spring Gala",
        "buyer_name": "Ada Lovelace",
        "refund_total": "EUR 35.00",
        "payment_method": "Visa ending 4242",
        "lines": [{"description": "Adult ticket", "amount_display": "EUR 35.00"}],
        "expected_arrival": "5 to 10 business days",
    },
    "cancellation": {
        "order_code": "A1B2C3",
        "event_name": "Spring Gala",
        "event_starts_at": STARTS,
        "buyer_name": None,
        "reason": "the show was called off",
        "refund_total": "EUR 70.00",
    },
    "personalisation_link": {
        "order_code": "A1B2C3",
        "event_name": "Spring Gala",
        "buyer_name": "Ada Lovelace",
        "link": "https://tickets.example/p/A1B2C3?t=abc&x=1",
        "expires_at": STARTS,
    },
    "payment_receipt": {
        "order_code": "A1B2C3",
        "event_name": "Spring Gala",
        "buyer_name": "Ada Lovelace",
        "issued_at": STARTS,
        "total_display": "EUR 72.50",
        "payment_method": "Visa ending 4242",
        "lines": [{"description": "Adult ticket", "quantity": 2, "total_display": "EUR 70.00"}],
    },
    "finance_refund_error": {
        "order_code": "A1B2C3",
        "refund_id": "R-9",
        "amount_display": "EUR 35.00",
        "payment_method": "card (stripe)",
        "reason": "charge_already_refunded",
        "failed_at": STARTS,
        "workflow_id": "refund/A1B2C3/req-1",
    },
    "finance_manual_refund_reminder": {
        "order_code": "A1B2C3",
        "refund_id": "R-10",
        "amount_display": "EUR 35.00",
        "payment_method": "invoice",
        "requested_at": STARTS,
        "days_waiting": 3,
        "workflow_id": None,
    },
    "custom_message": {
        "subject": "Doors open earlier",
        "body": "Doors open at 18:30.\nParking is free.\n\nSee you there.",
        "buyer_name": "Ada Lovelace",
        "order_code": "A1B2C3",
        "event_name": "Spring Gala",
        "event_starts_at": STARTS,
    },
    "refund_failed": {
        "order_code": "A1B2C3",
        "event_name": "Spring Gala",
        "buyer_name": "Ada Lovelace",
        "refund_total": "EUR 35.00",
        "payment_method": "card ending 4242",
        "reason": "Your card has expired or was cancelled, so your bank sent the money back to us.",
        "tickets_valid_again": True,
    },
    "finance_reconciliation": {
        "processor": "stripe",
        "window_label": "2026-12-02T00:00Z..2026-12-03T00:00Z",
        "run_id": "reconcile/stripe/2026-12-02T00:00Z..2026-12-03T00:00Z",
        "items": 3,
        "open_items": 2,
        "healed": 1,
        "by_class": [{"kind": "status_mismatch", "count": 2}],
        "totals": [
            {
                "currency": "EUR",
                "processor_display": "EUR 817.00",
                "ledger_display": "EUR 0.00",
                "difference_display": "EUR 817.00",
            }
        ],
        "report_csv": "reconciliation/run.csv",
        "report_json": "reconciliation/run.json",
    },
}
