"""Inputs and outputs of activities: small, id-only payloads (no personal data, no lists of recipients)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, field_validator

from ticketing.bulk import BulkKind
from ticketing.models import Processor, RefundKind
from ticketing.reconciliation_records import ProcessorRefundStatus
from ticketing.refund_ledger import ProcessorOutcome, RefundAction
from ticketing.states import RefundStatus

# The customer's receipt or notice of a refund that failed later, or finance's notice of a failed or a waiting refund.
RefundEmailKind = Literal["receipt", "failed-later", "refund-error", "manual-reminder"]


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
    kind: RefundKind
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
    status: RefundStatus
    processor: Processor
    amount: int
    currency: str
    ticket_count: int
    attempt: int
    idempotency_key: str
    payment_reference: str | None
    processor_refund_id: str | None = None
    failure_reason: str | None = None
    paid_manually: bool = False


class RefundTransition(BaseModel):
    """Move a refund in the ledger; `expect_attempt` makes a retried activity a no-op."""

    refund_id: str
    action: RefundAction
    actor: str
    expect_attempt: int
    processor_refund_id: str | None = None
    reason: str | None = None
    reference: str | None = None


class SettleRefund(BaseModel):
    """Hand the processor's answer to the ledger, which judges what it means (`refund_ledger.judge`)."""

    refund_id: str
    expect_attempt: int
    outcome: ProcessorOutcome
    actor: str = "ticketops"


class SubmitRefund(BaseModel):
    processor: Processor
    payment_reference: str
    amount: int
    currency: str
    idempotency_key: str
    metadata: dict[str, str]


class FetchRefund(BaseModel):
    processor: Processor
    processor_refund_id: str


class ProcessorRefundView(BaseModel):
    id: str
    status: ProcessorRefundStatus
    failure_reason: str | None = None

    def outcome(self) -> ProcessorOutcome:
        return ProcessorOutcome(processor_refund_id=self.id, status=self.status, failure_reason=self.failure_reason)


class RefundEmail(BaseModel):
    """A refund email: `receipt` or `failed-later` to the customer, `refund-error` or `manual-reminder` to finance."""

    refund_id: str
    kind: RefundEmailKind
    operation_id: str
    sequence: int = 0


class OpenPersonalisationRound(BaseModel):
    order_code: str
    operation_id: str
    actor: str


class PersonalisationRound(BaseModel):
    """The round a reset opened and when its link expires; the token itself is made in the email activity."""

    order_code: str
    event_id: str
    round: int
    expires_at: datetime
    ticket_count: int


class PersonalisationLinkEmail(BaseModel):
    order_code: str
    operation_id: str
    actor: str
    round: int
    expires_at: datetime


class ReceiptEmail(BaseModel):
    order_code: str
    operation_id: str
    actor: str


class CancelOrder(BaseModel):
    """Cancel the order, or the listed tickets, once per operation (a retry finds its own history)."""

    order_code: str
    operation_id: str
    actor: str
    reason: str
    refund: bool = False
    ticket_ids: list[str] | None = None


class RefundToStart(BaseModel):
    """The refund a cancellation asks for, priced on the cancelled order; the child re-quotes it."""

    refund_id: str
    kind: RefundKind
    amount: int
    currency: str
    quote_hash: str
    reason: str
    processor: Processor


class CancelOutcome(BaseModel):
    order_code: str
    event_id: str
    whole_order: bool
    ticket_ids: list[str]
    payment_voided: bool
    processor: Processor
    payment_reference: str | None = None
    refund: str
    refund_refusal: str | None = None
    refund_plan: RefundToStart | None = None


class VoidPayment(BaseModel):
    processor: Processor
    payment_reference: str


class VoidOutcome(BaseModel):
    """`status` is the processor's (e.g. `canceled`), or `rejected` with the processor's code."""

    status: str
    code: str | None = None


class CancellationNote(BaseModel):
    """A history event the cancel workflow records after the fact (payment voided, refund not started)."""

    order_code: str
    operation_id: str
    actor: str
    type: str
    data: dict[str, str | int | None] = {}


class CancellationEmails(BaseModel):
    """Notify the buyer and the distinct personalised attendees of the cancelled tickets."""

    order_code: str
    operation_id: str
    ticket_ids: list[str]
    reason: str | None = None
    refund_amount: int | None = None


class EmailsOutcome(BaseModel):
    sent: int
    already_sent: int
    rejected: int


class ReissueTickets(BaseModel):
    """Reissue (or, with `time_slot_id`, reschedule) the listed valid tickets; None means all."""

    order_code: str
    operation_id: str
    actor: str
    ticket_ids: list[str] | None = None
    time_slot_id: str | None = None


class ReissueOutcome(BaseModel):
    order_code: str
    event_id: str
    replaced: dict[str, str]
    time_slot_id: str | None = None
    already_done: bool = False


class PrepareBulk(BaseModel):
    bulk_id: str
    workflow_id: str
    kind: BulkKind
    event_id: str
    selection: dict[str, object]
    params: dict[str, object]
    actor: str
    retry_of: str | None = None


class BulkRange(BaseModel):
    first: int
    last: int
    total: int


class BulkBatch(BaseModel):
    """Work on the items with ids first..last; `rate` is this batch's share of the limit."""

    bulk_id: str
    first: int
    last: int
    rate: float
    phase: str = "deliver"


class FollowUp(BaseModel):
    """A refund a cancellation batch handed over: it waits (confirmation, finance) in its own Refund run."""

    refund_id: str
    order_code: str
    workflow_id: str
    summary: str | None = None  # the Refund run's summary: order and amount, no personal data (shown unencrypted)


class BatchCounts(BaseModel):
    counts: dict[str, int] = {}
    follow_ups: list[FollowUp] = []

    @field_validator("follow_ups", mode="before")
    @classmethod
    def _recorded_as_text(cls, value: object) -> object:
        """Histories recorded before the model carry `refund_id|order_code|workflow_id` strings."""
        if not isinstance(value, list):
            return value
        keys = ("refund_id", "order_code", "workflow_id")
        return [dict(zip(keys, v.split("|", 2), strict=True)) if isinstance(v, str) else v for v in value]


class FinishBulk(BaseModel):
    bulk_id: str
    status: str


class BulkReport(BaseModel):
    bulk_id: str
    status: str
    counts: dict[str, int]
    report_uri: str | None


class TransferStep(BaseModel):
    """Open, accept, cancel or expire a ticket transfer; the store row holds the recipient."""

    transfer_id: str
    actor: str
    acceptance_days: float = 7.0
    status: str | None = None  # close_transfer: cancelled or expired
    reason: str | None = None


TRANSFER_CANCEL_UPDATE = "cancel"  # TransferTicket's update that closes an open transfer


class CancelTransfer(BaseModel):
    """The TransferTicket cancel update's argument (an agent, or an event cancellation closing it)."""

    actor: str
    reason: str


class CloseEventTransfers(BaseModel):
    """Close the open transfers of an event cancellation's orders, a page at a time (ids after `after`)."""

    bulk_id: str
    after: str | None = None
    limit: int = 100


class EventTransfersClosed(BaseModel):
    """What a page came to: `next` is where the next page starts, None when this was the last."""

    closed: int = 0  # cancelled now (by this run's update, or found cancelled or expired meanwhile)
    accepted: int = 0  # the recipient accepted first: their order is among the cancellation's
    next: str | None = None


class TransferState(BaseModel):
    transfer_id: str
    order_code: str
    event_id: str
    ticket_id: str
    status: str
    expires_at: datetime | None = None
    new_order_code: str | None = None
    new_ticket_id: str | None = None


class TransferOfferEmail(BaseModel):
    transfer_id: str
    operation_id: str
    expires_at: datetime


class ReservationStep(BaseModel):
    """Record a deadline, expire, or take the payment of a reserved order, once per operation."""

    order_code: str
    operation_id: str
    actor: str
    deadline: datetime | None = None
    extended: bool = False
    reference: str | None = None
    processor: Processor = Processor.MANUAL  # the payment's; an older run's step has none: finance's


class ReservationState(BaseModel):
    order_code: str
    event_id: str
    status: str
    ticket_ids: list[str] = []


class PaymentReminder(BaseModel):
    order_code: str
    operation_id: str
    deadline: datetime
    sequence: int


class ReturnStep(BaseModel):
    """Open, decline, approve or settle a return request, once per operation (history dedupes it)."""

    order_code: str
    operation_id: str
    actor: str
    reason: str = ""
    via: str = "agent"
    refund_status: str | None = None
    refund_id: str | None = None


class ReturnState(BaseModel):
    order_code: str
    event_id: str
    status: str


class ReturnDeclinedEmail(BaseModel):
    order_code: str
    operation_id: str
    reason: str
