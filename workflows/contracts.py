"""Workflow inputs and results: what the backoffice sends and reads back."""

from __future__ import annotations

from pydantic import BaseModel


class ResendRequest(BaseModel):
    order_code: str
    actor: str


class ResendResult(BaseModel):
    order_code: str
    ticket_count: int
    message_id: str
    delivery: str


class RefundTiming(BaseModel):
    """Durations the refund waits, passed in so the workflow stays deterministic and testable."""

    confirmation_business_days: int = 10
    poll_initial_seconds: float = 30.0
    poll_max_seconds: float = 6 * 3600.0
    manual_reminder_days: float = 3.0
    finance_action_days: float = 30.0
    approval_expiry_hours: float = 48.0
    payment_timeout_seconds: float = 60.0


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


class ProcessorUpdate(BaseModel):
    """What a verified, re-fetched webhook tells the workflow."""

    processor_refund_id: str
    status: str
    failure_reason: str | None = None


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
