"""Payment processor activities on the `payments` queue (rate-limited by the server).

The idempotency key comes from the workflow id and the attempt number, so a
retried activity, a crashed worker or a replayed workflow asks the processor
for the same refund and gets the same one back. Keys expire (Stripe: 24 h) and
a retry from refund-error gets a new one, so every submission first looks for
a refund of ours at the processor and adopts it (`earlier_refund`).
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

import structlog
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
from payment_adapters.lookup import earlier_refund
from ticketing.models import Processor
from ticketing.money import Money

log = structlog.get_logger(__name__)
T = TypeVar("T")


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

    async def _call(self, call: Awaitable[T]) -> T:
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
        """Create the refund, unless the processor already has one of ours to adopt (`earlier_refund`).

        Asked first on every submission, not only on a retried activity: finance's retry of a
        refund-error, a restarted run and a retry after the processor forgot our key all come here
        with nothing else to tell them apart, and each could otherwise pay the buyer twice.
        """
        adapter = self._adapter(req.processor)
        earlier = await self._call(self._lookup(adapter, req))  # refused as a create would be (refund-error)
        if earlier is not None:
            log.info("payments.refund_adopted", refund_id=req.metadata.get("refund_id"), processor_refund_id=earlier.id)
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

    @staticmethod
    def _lookup(adapter: PaymentAdapter, req: SubmitRefund) -> Awaitable[ProcessorRefund | None]:
        return earlier_refund(
            adapter,
            payment_reference=req.payment_reference,
            refund_id=req.metadata.get("refund_id", ""),
            idempotency_key=req.idempotency_key,
        )

    @activity.defn(name="find_refund")
    async def find_refund(self, req: SubmitRefund) -> ProcessorRefundView | None:
        """After a long outage: did the processor make this refund (or an earlier attempt's) after all?

        Retried until the processor answers (its run has no other way to know)."""
        try:
            found = await self._lookup(self._adapter(req.processor), req)
        except ProcessorUnavailable as err:
            raise ApplicationError(err.message, type="processor-unavailable") from err
        return _view(found) if found else None

    @activity.defn(name="fetch_refund")
    async def fetch_refund(self, req: FetchRefund) -> ProcessorRefundView:
        adapter = self._adapter(req.processor)
        return _view(await self._call(adapter.get_refund(req.processor_refund_id)))
