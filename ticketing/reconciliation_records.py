"""What a processor says about money, normalised, for reconciliation to compare with the ledger.

Processor adapters produce these (Stripe from its list APIs; a settlement-file
processor from its CSV), so the classifier in the domain never sees an SDK
object. Amounts are minor units; currencies upper-case ISO-4217, as in the ledger.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from pydantic import BaseModel, model_validator

from ticketing.models import Processor


class ProcessorRefundStatus(StrEnum):
    """A processor refund's own status (Stripe's names), as opposed to our ledger's `RefundStatus`."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        return self in (ProcessorRefundStatus.SUCCEEDED, ProcessorRefundStatus.FAILED, ProcessorRefundStatus.CANCELED)


class ReconWindow(BaseModel):
    """Half-open `[start, end)` in UTC, over the processor's `created` time."""

    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> ReconWindow:
        if self.end <= self.start:
            raise ValueError("a reconciliation window must end after it starts")
        return self

    @property
    def label(self) -> str:
        """Stable text for workflow ids: `2026-12-03T00:00Z..2026-12-04T00:00Z`."""
        fmt = "%Y-%m-%dT%H:%MZ"
        return f"{self.start.strftime(fmt)}..{self.end.strftime(fmt)}"


class BalanceEntry(BaseModel):
    """A money movement on the processor's balance. `source` is the refund id for refund entries."""

    processor: Processor
    id: str
    type: str
    reporting_category: str
    source: str | None
    amount: int  # signed: a refund takes money out (negative), a refund failure puts it back
    currency: str
    created_at: datetime


class ProcessorRefundRecord(BaseModel):
    """One refund as the processor has it, with the keys that link it to our ledger (from its metadata)."""

    processor: Processor
    id: str
    status: ProcessorRefundStatus
    amount: int
    currency: str
    created_at: datetime
    payment_reference: str | None = None
    failure_reason: str | None = None
    pending_reason: str | None = None
    # Ours when set: written into the refund's metadata when we create it.
    ledger_refund_id: str | None = None
    idempotency_key: str | None = None
    order_code: str | None = None
    workflow_id: str | None = None
    balance_transaction: str | None = None
    failure_balance_transaction: str | None = None
    # The refund's own balance entries (its debit; once it failed, the credit too) when the refund
    # listing carried them inline (Stripe's `expand`); None when they were not read with it, and the
    # balance listing holds them instead.
    balance_entries: list[BalanceEntry] | None = None


class UndeliveredEvent(BaseModel):
    """A processor event whose webhook has not (yet) reached us."""

    processor: Processor
    id: str
    type: str
    created_at: datetime
    processor_refund_id: str | None = None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a processor listing; `next_cursor` is None on the last page."""

    items: list[T]
    next_cursor: str | None = None
