"""Inputs and outputs of activities: small, id-only payloads (no personal data, no lists of recipients)."""

from __future__ import annotations

from pydantic import BaseModel


class OrderRef(BaseModel):
    order_code: str
    actor: str


class ResendPlan(BaseModel):
    order_code: str
    event_id: str
    ticket_ids: list[str]


class DeliverTickets(BaseModel):
    """Send the given tickets of an order to its contact, once per operation."""

    order_code: str
    ticket_ids: list[str]
    operation_id: str
    actor: str
    kind: str = "tickets"
    history_type: str = "tickets-resent"


class DeliveryOutcome(BaseModel):
    message_id: str
    status: str
    ticket_count: int
