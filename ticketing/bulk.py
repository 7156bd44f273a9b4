"""Bulk operations over an event: who is in the set, and what became of each item.

An item is one recipient (bulk delivery: one email address, several orders
merged) or one order (event cancellation). Its status is the report's line.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from ticketing.states import OrderStatus


class BulkKind(StrEnum):
    DELIVERY = "delivery"
    EVENT_CANCELLATION = "event-cancellation"
    IMPORT = "import"  # orders from a file, staged by the API (ticketing/store/importing.py)


class BulkStatus(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Audience(StrEnum):
    BUYERS = "buyers"
    ATTENDEES = "attendees"


class ItemStatus(StrEnum):
    PENDING = "pending"
    DEFERRED = "deferred"  # the recipient's server said "later" (4xx); tried again after a delay
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOTIFIED = "notified"
    REFUNDED = "refunded"
    REFUND_PENDING = "refund-pending"
    REFUND_ERROR = "refund-error"
    MANUAL_PENDING = "manual-refund-pending"
    CANCELLED = "cancelled"
    IMPORTED = "imported"


# Item states a "retry failed" run picks up again.
RETRYABLE = frozenset({ItemStatus.FAILED, ItemStatus.REFUND_ERROR})


class RefundMode(StrEnum):
    FULL = "full"
    KEEP_SERVICE_FEES = "keep-service-fees"
    PERCENT = "percent"


class Selection(BaseModel):
    """Which orders of an event a bulk operation covers."""

    event_id: str
    time_slot_id: str | None = None
    statuses: list[OrderStatus] = [OrderStatus.PAID]
    unscanned_only: bool = False
    audience: Audience = Audience.BUYERS


class RefundPlan(BaseModel):
    mode: RefundMode = RefundMode.FULL
    percent: int = Field(default=100, ge=1, le=100)
