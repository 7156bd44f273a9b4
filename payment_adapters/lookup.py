"""The one look at the processor before a refund is (re)submitted or paid by hand: is one of ours there already?

Idempotency keys alone do not keep a refund from being paid twice: the processor
forgets them (Stripe: after 24 hours) and finance's retry is a new attempt under a
new key, while the refund an earlier attempt made may have been paid after the
ledger gave up on it. The processor is asked for every refund that names the
ledger refund, and the ledger's rule (`refund_ledger.to_adopt`) says which one
stands for it.
"""

from __future__ import annotations

from payment_adapters.base import PaymentAdapter, ProcessorRefund
from ticketing import refund_ledger
from ticketing.reconciliation_records import ProcessorRefundStatus
from ticketing.refund_ledger import ProcessorCandidate, ProcessorOutcome


async def earlier_refund(
    adapter: PaymentAdapter, *, payment_reference: str, refund_id: str, idempotency_key: str
) -> ProcessorRefund | None:
    """The processor refund of ours that a submission under `idempotency_key` adopts instead of paying again.

    The processor is asked for every refund naming the ledger refund (any attempt) and the ledger's
    rule (`refund_ledger.to_adopt`) picks: this attempt's own, or an earlier one that paid or may pay.
    """
    found = await adapter.find_refunds(
        payment_reference=payment_reference, refund_id=refund_id, idempotency_key=idempotency_key
    )
    by_id = {r.id: r for r in found}
    candidates = [
        ProcessorCandidate(
            outcome=ProcessorOutcome(
                processor_refund_id=r.id, status=ProcessorRefundStatus(r.status), failure_reason=r.failure_reason
            ),
            idempotency_key=r.metadata.get("idempotency_key"),
        )
        for r in found
    ]
    chosen = refund_ledger.to_adopt(idempotency_key, candidates)
    return by_id[chosen.processor_refund_id] if chosen else None
