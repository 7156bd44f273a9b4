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
        adapter = self._adapter(req.processor)
        refund = await self._call(
            adapter.create_refund(
                payment_reference=req.payment_reference,
                amount=Money(amount=req.amount, currency=req.currency),
                idempotency_key=req.idempotency_key,
                metadata=req.metadata,
            )
        )
        return _view(refund)

    @activity.defn(name="fetch_refund")
    async def fetch_refund(self, req: FetchRefund) -> ProcessorRefundView:
        adapter = self._adapter(req.processor)
        return _view(await self._call(adapter.get_refund(req.processor_refund_id)))
