"""The payment adapter Protocol and the processor-neutral shapes it speaks.

Errors split in two: `ProcessorRejected` is the processor saying no (never
retried, shown to finance); `ProcessorUnavailable` is a 429, a 5xx or the
network (retried with backoff by the activity's retry policy).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel

from ticketing.models import Processor
from ticketing.money import Money
from ticketing.refunds import ProcessorCapabilities

RefundState = Literal["pending", "succeeded", "failed", "canceled", "requires_action"]


class ProcessorRefund(BaseModel):
    id: str
    status: RefundState
    amount: Money
    payment_reference: str | None = None
    failure_reason: str | None = None
    pending_reason: str | None = None
    metadata: dict[str, str] = {}
    created: datetime | None = None


class ProcessorPayment(BaseModel):
    id: str
    status: str
    amount: Money
    amount_refunded: int = 0
    created: datetime | None = None
    metadata: dict[str, str] = {}


class WebhookEvent(BaseModel):
    """A verified processor notification, normalised; `refund` is set for refund events, `payment` for payments'."""

    id: str
    type: str
    created: datetime
    refund: ProcessorRefund | None = None
    payment: ProcessorPayment | None = None


class ProcessorError(Exception):
    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class ProcessorRejected(ProcessorError):
    """The processor refused the request (4xx); retrying the same request will not help."""


class ProcessorUnavailable(ProcessorError):
    """Rate limited, a server error or the network: retry later with the same idempotency key."""


class WebhookRejected(ProcessorError):
    """A webhook whose signature, age or body does not verify."""


class PaymentAdapter(Protocol):
    processor: Processor
    capabilities: ProcessorCapabilities

    async def create_refund(
        self, *, payment_reference: str, amount: Money, idempotency_key: str, metadata: dict[str, str]
    ) -> ProcessorRefund: ...

    async def get_refund(self, refund_id: str) -> ProcessorRefund: ...

    async def get_payment(self, payment_id: str) -> ProcessorPayment:
        """The payment as the processor has it now (a webhook's copy may be stale or replayed)."""
        ...

    async def find_refunds(
        self, *, payment_reference: str, refund_id: str, idempotency_key: str
    ) -> list[ProcessorRefund]:
        """Every refund the processor holds on the payment that names our ledger refund (metadata
        `refund_id`) or carries this idempotency key, over all pages.

        Asked before every submission, so a refund an earlier attempt made (its answer lost, its
        confirmation timed out, the processor's key expired: Stripe forgets after 24 h) is adopted
        rather than made again; `refund_ledger.to_adopt` says which.
        """
        ...

    async def void_payment(self, payment_reference: str) -> str:
        """Cancel an unpaid payment so it can never be captured; returns its final status.

        Safe to repeat: a payment voided already is not an error.
        """
        ...

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent: ...

    def list_refunds(self, since: datetime) -> AsyncIterator[ProcessorRefund]: ...

    def list_payments(self, since: datetime) -> AsyncIterator[ProcessorPayment]: ...
