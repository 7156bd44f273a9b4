"""A payment the processor took that no order could take: finance's item, never only a log line.

A reservation refuses a payment that comes after its expiry, after it was paid, or for another
amount; the buyer's money is then held for nothing. The finding is keyed by the payment id, so a
redelivered webhook finds the same item, and it is never healed by a reconciliation run: finance
refunds the payment at the processor, or reinstates the order, and resolves the item.
"""

from __future__ import annotations

from ticketing.money import Money
from ticketing.reconciliation.items import DiscrepancyClass, SuggestedAction
from ticketing.reconciliation.models import Finding

SOURCE = "payment-webhook"  # what the item names as its finder (first and last seen), where runs name a run


def unapplied_payment(
    *, order_code: str, payment_id: str, received: Money, reason_type: str, reason: str,
    order_status: str | None = None, order_amount: Money | None = None,
) -> Finding:
    """The finding for one payment that was not applied, with both sides' evidence."""
    return Finding(
        cls=DiscrepancyClass.PAYMENT_UNAPPLIED,
        key=payment_id,
        action=SuggestedAction.REFUND_OR_REINSTATE,
        ledger={
            "order_code": order_code,
            "order_status": order_status,
            "order_amount": order_amount.amount if order_amount else None,
            "refusal": reason_type,
            "reason": reason,
        },
        processor={"payment_id": payment_id, "amount": received.amount, "currency": received.currency},
        order_code=order_code,
        amount=received.amount,
        currency=received.currency,
    )
