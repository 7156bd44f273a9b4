"""What a ticket or receipt PDF shows, already formatted by the caller.

Amounts arrive as display strings ("EUR 35.00") because the domain owns money formatting;
datetimes should be in the venue's timezone, since they are printed as given.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TicketDocument(_Document):
    order_code: str
    ticket_id: str
    ticket_code: str  # what the buyer sees (Order.ticket_code); ticket_id stays internal
    barcode: str
    event_name: str
    event_starts_at: datetime
    venue: str | None
    time_slot_label: str | None
    ticket_type: str
    holder_name: str | None
    price_display: str


class ReceiptLine(_Document):
    description: str
    quantity: int
    unit_price_display: str
    total_display: str


class ReceiptDocument(_Document):
    order_code: str
    issued_at: datetime
    buyer_name: str | None
    lines: list[ReceiptLine]
    fees: list[ReceiptLine]
    total_display: str
    payment_method: str
    refunds: list[ReceiptLine] = []
