"""Return requests (Liveto: Return Requested -> Returned), as pure functions.

A buyer (through a signed link) or an agent asks to return a paid order, with a reason: the
order shows `return-requested`. Finance approves it, which runs a full refund with the event's
policy and quote like any refund, and the order becomes `returned` once the refund succeeded;
or declines it with a reason the buyer is emailed, and the order is `paid` again. A refund that
fails also puts the order back to `paid` (the refund's own flows take it from there).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ticketing.errors import ActionNotAllowed
from ticketing.models import Event, Order, OrderEvent, RefundKind
from ticketing.policies.actions import return_decision_refusal, return_refusal
from ticketing.processors import CAPABILITIES
from ticketing.refunds import RefundQuote, RefundRequest, quote_refund
from ticketing.signed_links import sign
from ticketing.states import ORDER_TRANSITIONS, OrderStatus, transition

LINK_PURPOSE = "return"  # of the buyer's signed return link (ticketing.signed_links)
LINK_DAYS = 30
REQUESTED_EVENT = "return-requested"
DECLINED_EVENT = "return-declined"
APPROVED_EVENT = "return-approved"
RETURNED_EVENT = "returned"
REFUND_FAILED_EVENT = "return-refund-failed"


def return_link(secret: str, public_url: str, order_code: str, event: Event, *, now: datetime
                ) -> tuple[str, datetime] | None:
    """The buyer's signed return link and its expiry: 30 days, or until the event starts (None once it has).

    The one place the link is made: the agents' `GET /orders/{code}/return-link` and the tickets email.
    """
    expires = min(now + timedelta(days=LINK_DAYS), event.starts_at).replace(microsecond=0)
    if expires <= now:
        return None
    token = sign(secret, LINK_PURPOSE, order_code, expires)
    return f"{public_url.rstrip('/')}/returns/{token}", expires


def _event(kind: str, actor: str, now: datetime, operation_id: str, **data: object) -> OrderEvent:
    return OrderEvent(type=kind, actor=actor, at=now, data={"operation_id": operation_id, **data},
                      dedupe_key=f"{kind}:{operation_id}")


def _move(order: Order, target: OrderStatus) -> Order:
    return order.model_copy(update={"status": transition(ORDER_TRANSITIONS, order.status, target, what="order")})


def request_return(
    order: Order, event: Event, *, reason: str, via: str, actor: str, now: datetime, operation_id: str
) -> tuple[Order, OrderEvent]:
    if refusal := return_refusal(order, event):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)
    return _move(order, OrderStatus.RETURN_REQUESTED), _event(
        REQUESTED_EVENT, actor, now, operation_id, reason=reason, via=via
    )


def _deciding(order: Order, event: Event) -> None:
    if refusal := return_decision_refusal(order, event):
        raise ActionNotAllowed(refusal.reason, type=refusal.type)


def decline_return(
    order: Order, event: Event, *, reason: str, actor: str, now: datetime, operation_id: str
) -> tuple[Order, OrderEvent]:
    _deciding(order, event)
    return _move(order, OrderStatus.PAID), _event(DECLINED_EVENT, actor, now, operation_id, reason=reason)


def approve_return(
    order: Order, event: Event, *, reason: str, actor: str, now: datetime, operation_id: str
) -> tuple[RefundQuote, OrderEvent]:
    """The full refund the approval starts, quoted on the order as it is (the child re-quotes it)."""
    _deciding(order, event)
    quote = quote_refund(order, event, RefundRequest(kind=RefundKind.FULL, reason=reason),
                         CAPABILITIES[order.payment.processor])
    return quote, _event(APPROVED_EVENT, actor, now, operation_id, amount=quote.amount.amount)


def settle_return(
    order: Order, event: Event, *, refund_status: str, refund_id: str, now: datetime, operation_id: str
) -> tuple[Order, OrderEvent]:
    """The approved return's refund ended: returned when it succeeded, paid again when not."""
    _deciding(order, event)
    if refund_status == "refunded":
        return _move(order, OrderStatus.RETURNED), _event(RETURNED_EVENT, "ticketops", now, operation_id,
                                                          refund_id=refund_id)
    return _move(order, OrderStatus.PAID), _event(REFUND_FAILED_EVENT, "ticketops", now, operation_id,
                                                  refund_id=refund_id, refund_status=refund_status)
