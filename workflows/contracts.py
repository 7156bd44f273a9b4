"""Workflow inputs and results: what the backoffice sends and reads back."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

# Defined once with the activity that sends it too (an event cancellation closing a transfer).
from activities.contracts import CancelTransfer as CancelTransfer  # noqa: PLC0414 (a re-export)

# Defined once with the settings; the workflows' inputs carry it.
from runtime.settings import RefundTiming as RefundTiming  # noqa: PLC0414 (a re-export)
from ticketing.bulk import BulkKind, RefundPlan
from ticketing.models import Processor, RefundKind
from ticketing.refund_ledger import ProcessorOutcome
from ticketing.states import RefundStatus


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
    kind: RefundKind = RefundKind.FULL
    reason: str = ""
    ticket_ids: list[str] = []
    amount: int | None = None
    currency: str | None = None
    quote_hash: str = ""
    timing: RefundTiming = RefundTiming()
    approval_threshold: int | None = None
    existing_refund_id: str | None = None
    late_failure_reason: str | None = None
    # A follow-up run's news: a refund-error's own processor refund ended after its run closed (`late_answer`).
    late_news: ProcessorOutcome | None = None


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
    status: RefundStatus
    attempt: int
    waiting_for: str
    failure_reason: str | None = None


class RefundResult(BaseModel):
    refund_id: str
    order_code: str
    status: RefundStatus
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


class DeliveryParams(BaseModel):
    """A bulk delivery: the tickets again, or a message with its subject and body."""

    kind: Literal[BulkKind.DELIVERY] = BulkKind.DELIVERY
    template: Literal["tickets", "message"] = "tickets"
    subject: str | None = None
    body: str | None = None


class CancellationParams(BaseModel):
    """An event cancellation: why, how much each order gets back, and whether buyers hear first."""

    kind: Literal[BulkKind.EVENT_CANCELLATION] = BulkKind.EVENT_CANCELLATION
    reason: str = "the event was cancelled"
    refund: RefundPlan = RefundPlan()
    notify: bool = True


class ImportParams(BaseModel):
    """An order import (`POST /imports`): whether the imported orders' tickets are emailed.

    `prerender` is set by the workflow itself, not by the caller: runs that started before the
    render phase existed have it unset, and keep their phases across continue-as-new."""

    kind: Literal[BulkKind.IMPORT] = BulkKind.IMPORT
    deliver: bool = False
    prerender: bool = False


BulkParams = Annotated[DeliveryParams | CancellationParams | ImportParams, Field(discriminator="kind")]


class BulkInput(BaseModel):
    bulk_id: str
    kind: BulkKind
    event_id: str
    actor: str
    selection: dict[str, object]
    params: BulkParams
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

    @model_validator(mode="before")
    @classmethod
    def _params_of_kind(cls, data: Any) -> Any:
        """The parameters are of the run's kind; runs recorded before the typed model carry a plain dict."""
        if isinstance(data, dict) and isinstance(data.get("params", {}), dict):
            data = {**data, "params": {**data.get("params", {}), "kind": data.get("kind")}}
        return data


class BulkView(BaseModel):
    bulk_id: str
    status: str
    phase: str
    total: int
    processed: int
    counts: dict[str, int]
    report_uri: str | None = None


class TransferInput(BaseModel):
    """The transfer id is the workflow id; the recipient's name and email are in the store only."""

    order_code: str
    ticket_id: str
    actor: str
    acceptance_days: float = 7.0


class AcceptTransfer(BaseModel):
    via: str = "link"


class TransferResult(BaseModel):
    transfer_id: str
    order_code: str
    ticket_id: str
    status: str
    new_order_code: str | None = None
    new_ticket_id: str | None = None
    delivery: str | None = None


class ReservationInput(BaseModel):
    order_code: str
    actor: str
    deadline: datetime
    reminder_hours: list[float] = [72.0, 24.0]


class ExtendDeadline(BaseModel):
    deadline: datetime
    actor: str


class ReservationPayment(BaseModel):
    """Who paid it and how: finance's mark-paid is `manual`; a Stripe webhook names its payment intent."""

    actor: str
    reference: str | None = None
    processor: Processor = Processor.MANUAL

    @model_validator(mode="before")
    @classmethod
    def _legacy_via(cls, data: Any) -> Any:
        """An update sent before `processor` existed (an API mid-rollout) said `via: stripe` for Stripe's."""
        if isinstance(data, dict) and "processor" not in data and data.get("via") == "stripe":
            return {**data, "processor": Processor.STRIPE.value}
        return data


class ReservationResult(BaseModel):
    order_code: str
    status: str
    deadline: datetime
    reminders_sent: int
    delivery: str | None = None


class ReturnInput(BaseModel):
    order_code: str
    actor: str
    reason: str
    via: str = "agent"
    timing: RefundTiming = RefundTiming()
    approval_threshold: int | None = None


class ReturnDecision(BaseModel):
    actor: str
    reason: str = ""


class ReturnResult(BaseModel):
    order_code: str
    status: str  # returned, declined, or paid (the refund did not succeed)
    refund_id: str | None = None
    refund_status: str | None = None
    delivery: str | None = None
