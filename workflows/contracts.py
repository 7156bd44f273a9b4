"""Workflow inputs and results: what the backoffice sends and reads back."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

# Defined once with the settings; the workflows' inputs carry it.
from runtime.settings import RefundTiming as RefundTiming  # noqa: PLC0414 (a re-export)
from ticketing.refund_ledger import ProcessorOutcome


class ResendRequest(BaseModel):
    order_code: str
    actor: str


class ResendResult(BaseModel):
    order_code: str
    ticket_count: int
    message_id: str
    delivery: str


class RefundInput(BaseModel):
    order_code: str
    actor: str
    refund_id: str
    kind: str = "full"
    reason: str = ""
    ticket_ids: list[str] = []
    amount: int | None = None
    currency: str | None = None
    quote_hash: str = ""
    timing: RefundTiming = RefundTiming()
    approval_threshold: int | None = None
    existing_refund_id: str | None = None
    late_failure_reason: str | None = None


class MarkRefunded(BaseModel):
    actor: str
    reference: str


class RetryRefund(BaseModel):
    actor: str


class ApproveRefund(BaseModel):
    actor: str


# What a verified, re-fetched webhook tells the refund's run: the processor's outcome, as the ledger's rule reads it.
ProcessorUpdate = ProcessorOutcome


class NewsReceipt(StrEnum):
    """What a Refund run did with processor news: taken (it will act on it before it ends) or ignored (it is
    ending; whoever sent it acts, e.g. starts the late-failure run)."""

    TAKEN = "taken"
    IGNORED = "ignored"


class RefundProgress(BaseModel):
    refund_id: str
    status: str
    attempt: int
    waiting_for: str
    failure_reason: str | None = None


class RefundResult(BaseModel):
    refund_id: str
    order_code: str
    status: str
    amount: int
    currency: str
    attempts: int
    failure_reason: str | None = None


class OpenPersonalisationRequest(BaseModel):
    order_code: str
    actor: str


class OpenPersonalisationResult(BaseModel):
    order_code: str
    round: int
    ticket_count: int
    message_id: str
    delivery: str


class SendReceiptRequest(BaseModel):
    order_code: str
    actor: str


class SendReceiptResult(BaseModel):
    order_code: str
    message_id: str
    delivery: str


class CancelInput(BaseModel):
    order_code: str
    actor: str
    reason: str
    refund: bool = False
    ticket_ids: list[str] | None = None
    timing: RefundTiming = RefundTiming()
    approval_threshold: int | None = None
    refund_wait_seconds: float = 600.0


class CancelResult(BaseModel):
    """`refund`: not-requested, nothing-to-refund, or the child refund's ledger status when we stopped waiting."""

    order_code: str
    whole_order: bool
    ticket_ids: list[str]
    payment: str
    refund: str
    refund_id: str | None = None
    refund_operation_id: str | None = None
    refund_error: str | None = None
    emails_sent: int = 0
    emails: str = "sent"


class ReissueInput(BaseModel):
    order_code: str
    actor: str
    ticket_ids: list[str] | None = None


class RescheduleInput(BaseModel):
    order_code: str
    actor: str
    time_slot_id: str
    ticket_ids: list[str] | None = None


class ReissueResult(BaseModel):
    order_code: str
    replaced: dict[str, str]
    time_slot_id: str | None = None
    delivery: str
    message_id: str | None = None


class BulkProgress(BaseModel):
    """Where a bulk run stands; carried across continue-as-new."""

    first: int = 0
    last: int = -1
    total: int = 0
    phase: int = 0
    cursor: int = 0
    counts: dict[str, int] = {}
    batches: int = 0
    follow_ups: int = 0
    deferred_passes: int = 0


class BulkInput(BaseModel):
    bulk_id: str
    kind: str
    event_id: str
    actor: str
    selection: dict[str, object]
    params: dict[str, object] = {}
    retry_of: str | None = None
    batch_size: int = 100
    window: int = 4
    rate_per_second: float = 50.0
    continue_after_batches: int = 100
    heartbeat_seconds: float = 60.0
    deferred_retries: int = 3
    deferred_retry_seconds: float = 300.0
    progress: BulkProgress | None = None
    paused: bool = False
    refund_timing: RefundTiming = RefundTiming()


class BulkView(BaseModel):
    bulk_id: str
    status: str
    phase: str
    total: int
    processed: int
    counts: dict[str, int]
    report_uri: str | None = None
