"""What an event cancellation refunds per order: in full, keeping service fees, or a percentage.

The payer gets back tickets they transferred away too (`event_cancelled` on the quote): the
cancellation invalidates the recipients' replacements, since their orders are the event's too.

When the organiser calls a show off, "in full" includes the fees the order's
policy would otherwise keep, so the order's fees are made refundable first
(and the history says so).
"""

from __future__ import annotations

from datetime import datetime

from ticketing.bulk import RefundMode, RefundPlan
from ticketing.errors import DomainError
from ticketing.models import Event, Order, OrderEvent, RefundKind
from ticketing.policies.actions import Refusal
from ticketing.processors import CAPABILITIES
from ticketing.refunds import RefundQuote, RefundRequest, quote_refund


def fees_refundable(order: Order, *, actor: str, now: datetime, bulk_id: str) -> tuple[Order, list[OrderEvent]]:
    if all(f.refundable for f in order.fees):
        return order, []
    fees = [f.model_copy(update={"refundable": True}) for f in order.fees]
    event = OrderEvent(
        type="fees-made-refundable",
        actor=actor,
        at=now,
        data={"bulk_id": bulk_id, "reason": "event cancelled"},
        dedupe_key=f"fees-made-refundable:{bulk_id}:{order.code}",
    )
    return order.model_copy(update={"fees": fees}), [event]


def plan_refund(order: Order, event: Event, plan: RefundPlan, reason: str) -> RefundQuote | Refusal:
    """The quote for a cancelled order under the plan; a Refusal when nothing is to be refunded."""
    if order.refundable_total.is_zero and order.payment.processor.value != "free":
        return Refusal(type="nothing-to-refund", reason="nothing is left to refund")
    if order.payment.processor.value == "free":
        return Refusal(type="nothing-to-refund", reason="a free order has nothing to refund")
    if plan.mode is RefundMode.PERCENT and plan.percent < 100:
        amount = order.refundable_total.percent(plan.percent)
        if amount.is_zero:
            return Refusal(type="nothing-to-refund", reason="the percentage leaves nothing to refund")
        request = RefundRequest(kind=RefundKind.AMOUNT, reason=reason, amount=amount, event_cancelled=True)
    else:
        request = RefundRequest(kind=RefundKind.FULL, reason=reason, event_cancelled=True)
    try:
        return quote_refund(order, event, request, CAPABILITIES[order.payment.processor])
    except DomainError as err:
        return Refusal(type=err.type, reason=err.detail)
