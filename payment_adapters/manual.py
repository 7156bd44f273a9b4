"""Manual refunds (invoice, vouchers, money paid out elsewhere): finance confirms.

Nothing is sent anywhere; the workflow waits for a finance user's
"mark as refunded" with a reference, and the adapter only says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from payment_adapters.base import ProcessorPayment, ProcessorRefund, ProcessorRejected, WebhookEvent, WebhookRejected
from ticketing.models import Processor
from ticketing.money import Money
from ticketing.processors import CAPABILITIES


class ManualAdapter:
    processor = Processor.MANUAL
    capabilities = CAPABILITIES[Processor.MANUAL]

    async def create_refund(
        self, *, payment_reference: str, amount: Money, idempotency_key: str, metadata: dict[str, str]
    ) -> ProcessorRefund:
        return ProcessorRefund(
            id=f"manual:{idempotency_key}",
            status="requires_action",
            amount=amount,
            payment_reference=payment_reference,
            pending_reason="awaiting_finance",
            metadata=metadata,
        )

    async def get_refund(self, refund_id: str) -> ProcessorRefund:
        raise LookupError("manual refunds live only in our ledger")

    async def void_payment(self, payment_reference: str) -> str:
        """Nothing was collected through a processor: voiding is our ledger's alone."""
        return "voided"

    async def find_refunds(
        self, *, payment_reference: str, refund_id: str, idempotency_key: str
    ) -> list[ProcessorRefund]:
        return []

    async def get_payment(self, payment_id: str) -> ProcessorPayment:
        raise ProcessorRejected("manual payments are not held by a processor", code="no_processor")

    def parse_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        raise WebhookRejected("manual refunds have no webhooks", code="no_webhooks")

    async def list_refunds(self, since: datetime) -> AsyncIterator[ProcessorRefund]:
        return
        yield

    async def list_payments(self, since: datetime) -> AsyncIterator[ProcessorPayment]:
        return
        yield


class FreeAdapter(ManualAdapter):
    """Free orders: nothing to move, a refund succeeds at once."""

    processor = Processor.FREE
    capabilities = CAPABILITIES[Processor.FREE]

    async def create_refund(
        self, *, payment_reference: str, amount: Money, idempotency_key: str, metadata: dict[str, str]
    ) -> ProcessorRefund:
        return ProcessorRefund(
            id=f"free:{idempotency_key}", status="succeeded", amount=amount, metadata=metadata
        )
