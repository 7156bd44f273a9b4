"""Payment processor activities on the `payments` queue (rate-limited by the server).

The idempotency key comes from the workflow id and the attempt number, so a
retried activity, a crashed worker or a replayed workflow asks the processor
for the same refund and gets the same one back.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import FetchRefund, ProcessorRefundView, SubmitRefund
from activities.deps import Deps
from payment_adapters.base import (
    PaymentAdapter,
    ProcessorRefund,
    ProcessorRejected,
    ProcessorUnavailable,
)
from ticketing.models import Processor
from ticketing.money import Money


def _view(refund: ProcessorRefund) -> ProcessorRefundView:
    return ProcessorRefundView(id=refund.id, status=refund.status, failure_reason=refund.failure_reason)


class PaymentActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _adapter(self, processor: str) -> PaymentAdapter:
        adapter = self.deps.payments.get(Processor(processor))
        if adapter is None:
            raise ApplicationError(
                f"no payment adapter is configured for {processor}",
                type="processor-not-configured",
                non_retryable=True,
            )
        return adapter

    async def _call(self, call: Awaitable[ProcessorRefund]) -> ProcessorRefund:
        try:
            return await call
        except ProcessorRejected as err:
            raise ApplicationError(
                err.message,
                {"code": err.code, "status": err.status},
                type="processor-rejected",
                non_retryable=True,
            ) from err
        except ProcessorUnavailable as err:
            delay = timedelta(seconds=2) if err.status == 429 else None
            raise ApplicationError(
                err.message, {"code": err.code, "status": err.status}, type="processor-unavailable",
                next_retry_delay=delay,
            ) from err

    @activity.defn(name="submit_refund")
    async def submit_refund(self, req: SubmitRefund) -> ProcessorRefundView:
        """Create the refund; a retry first adopts what an earlier attempt may have made."""
        adapter = self._adapter(req.processor)
        if activity.info().attempt > 1:
            earlier = await self._find(adapter, req)
            if earlier is not None:
                return _view(earlier)
        refund = await self._call(
            adapter.create_refund(
                payment_reference=req.payment_reference,
                amount=Money(amount=req.amount, currency=req.currency),
                idempotency_key=req.idempotency_key,
                metadata=req.metadata,
            )
        )
        return _view(refund)

    async def _find(self, adapter: PaymentAdapter, req: SubmitRefund) -> ProcessorRefund | None:
        try:
            return await adapter.find_refund(
                payment_reference=req.payment_reference, idempotency_key=req.idempotency_key
            )
        except ProcessorUnavailable as err:
            raise ApplicationError(err.message, type="processor-unavailable") from err

    @activity.defn(name="find_refund")
    async def find_refund(self, req: SubmitRefund) -> ProcessorRefundView | None:
        """After a long outage: did the processor make this refund after all?"""
        found = await self._find(self._adapter(req.processor), req)
        return _view(found) if found else None

    @activity.defn(name="fetch_refund")
    async def fetch_refund(self, req: FetchRefund) -> ProcessorRefundView:
        adapter = self._adapter(req.processor)
        return _view(await self._call(adapter.get_refund(req.processor_refund_id)))
