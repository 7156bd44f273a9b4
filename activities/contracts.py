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


class OpenRefund(BaseModel):
    order_code: str
    kind: str
    reason: str
    ticket_ids: list[str] = []
    amount: int | None = None
    currency: str | None = None
    quote_hash: str
    refund_id: str
    workflow_id: str
    actor: str
    approval_threshold: int | None = None


class RefundSnapshot(BaseModel):
    """What the workflow needs to know of a ledger row: ids, status and money, no personal data."""

    refund_id: str
    order_code: str
    event_id: str
    status: str
    processor: str
    amount: int
    currency: str
    ticket_count: int
    attempt: int
    idempotency_key: str
    payment_reference: str | None
    processor_refund_id: str | None = None
    failure_reason: str | None = None


class RefundTransition(BaseModel):
    """Move a refund in the ledger; `expect_attempt` makes a retried activity a no-op.

    `action` is one of: submitted, succeeded, failed, retry, approve, reject.
    """

    refund_id: str
    action: str
    actor: str
    expect_attempt: int
    processor_refund_id: str | None = None
    reason: str | None = None
    reference: str | None = None


class SubmitRefund(BaseModel):
    processor: str
    payment_reference: str
    amount: int
    currency: str
    idempotency_key: str
    metadata: dict[str, str]


class FetchRefund(BaseModel):
    processor: str
    processor_refund_id: str


class ProcessorRefundView(BaseModel):
    id: str
    status: str
    failure_reason: str | None = None


class RefundEmail(BaseModel):
    """A refund email: `receipt` to the customer, `refund-error` or `manual-reminder` to finance."""

    refund_id: str
    kind: str
    operation_id: str
    sequence: int = 0
