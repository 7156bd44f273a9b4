"""What an event cancellation refunds per order: in full (fees too), keeping service fees, or a percentage."""

from __future__ import annotations

from tests.builders import NOW, eur, make_event, make_order
from ticketing.bulk import RefundMode, RefundPlan
from ticketing.cancellation import CancelRequest, cancel_order
from ticketing.event_cancellation import fees_refundable, plan_refund
from ticketing.models import PaymentMethod
from ticketing.policies.actions import Refusal
from ticketing.refunds import RefundQuote


def _cancelled(**kw: object):
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2, service_fee=300, **kw)  # type: ignore[arg-type]
    done = cancel_order(order, event, CancelRequest(reason="called off"), actor="ops", now=NOW, operation_id="bk/x")
    return event, done.order


def test_full_refund_includes_the_fees_the_policy_would_keep() -> None:
    event, order = _cancelled()
    order, history = fees_refundable(order, actor="ops", now=NOW, bulk_id="bk_1")
    assert [h.type for h in history] == ["fees-made-refundable"]
    quote = plan_refund(order, event, RefundPlan(mode=RefundMode.FULL), "called off")
    assert isinstance(quote, RefundQuote) and quote.amount == eur(7300)
    again, nothing = fees_refundable(order, actor="ops", now=NOW, bulk_id="bk_1")
    assert again == order and nothing == []


def test_keep_service_fees_and_percent() -> None:
    event, order = _cancelled()
    keep = plan_refund(order, event, RefundPlan(mode=RefundMode.KEEP_SERVICE_FEES), "called off")
    assert isinstance(keep, RefundQuote) and keep.amount == eur(7000) and keep.fees_kept == eur(300)
    half = plan_refund(order, event, RefundPlan(mode=RefundMode.PERCENT, percent=33), "called off")
    assert isinstance(half, RefundQuote) and half.amount == eur(7000 * 33 // 100)


def test_free_and_fully_refunded_orders_have_nothing_to_refund() -> None:
    event, free = _cancelled(method=PaymentMethod.FREE)
    assert isinstance(plan_refund(free, event, RefundPlan(), "x"), Refusal)
    event, order = _cancelled()
    done = order.model_copy(update={"refunded_total": eur(7000)})
    refusal = plan_refund(done, event, RefundPlan(mode=RefundMode.KEEP_SERVICE_FEES), "x")
    assert isinstance(refusal, Refusal) and refusal.type == "nothing-to-refund"
