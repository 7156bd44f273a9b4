"""The one refund rule: what a processor's answer does to a ledger refund, and each action's move."""

from __future__ import annotations

import pytest

from tests.builders import NOW, eur, make_event, make_order
from ticketing import refund_ledger
from ticketing.errors import InvalidTransition
from ticketing.models import EventPolicy, PaymentMethod, RefundKind
from ticketing.processors import CAPABILITIES
from ticketing.reconciliation_records import ProcessorRefundStatus as P
from ticketing.refund_ledger import ProcessorOutcome, RefundAction, Settlement
from ticketing.refunds import RefundRequest, needs_approval, quote_refund
from ticketing.states import OrderStatus, RefundStatus, TicketState


def _refunding():
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2)
    request = RefundRequest(kind=RefundKind.TICKETS, ticket_ids=[order.tickets[0].id], reason="cannot attend")
    quote = quote_refund(order, event, request, CAPABILITIES[order.payment.processor])
    return refund_ledger.open_refund(
        order, quote, refund_id="rf_1", workflow_id="refund/X/1", actor="agent", now=NOW, needs_approval=False
    )[:2]


def _out(status: P, pid: str = "re_1", reason: str | None = None) -> ProcessorOutcome:
    return ProcessorOutcome(processor_refund_id=pid, status=status, failure_reason=reason)


@pytest.mark.parametrize(
    ("status", "expected", "history"),
    [
        (P.SUCCEEDED, RefundStatus.SUCCEEDED, ["item-refunded"]),
        (P.PENDING, RefundStatus.CONFIRMING, ["confirming-refund"]),
        (P.REQUIRES_ACTION, RefundStatus.CONFIRMING, ["confirming-refund"]),
        # Through confirming, so the failed refund keeps the processor's id for finance and reconciliation.
        (P.FAILED, RefundStatus.FAILED, ["confirming-refund", "refund-error"]),
        (P.CANCELED, RefundStatus.FAILED, ["confirming-refund", "refund-error"]),
    ],
)
def test_the_first_answer_moves_a_refunding_refund(status: P, expected: RefundStatus, history: list[str]) -> None:
    order, refund = _refunding()
    assert refund_ledger.judge(refund, _out(status)) is Settlement.MOVE
    order, after, events = refund_ledger.settle(order, refund, _out(status, reason="card_expired"), actor="t", now=NOW)
    assert after.status is expected and [e.type for e in events] == history
    assert after.processor_refund_id == "re_1"
    if expected is RefundStatus.FAILED:
        assert after.failure_reason == "card_expired" and order.pending_refund_total == eur(0)
        assert order.tickets[0].state is TicketState.VALID
    # Settling the same answer again finds nothing to do: a retried activity is harmless.
    assert refund_ledger.judge(after, _out(status)) is Settlement.NO_CHANGE
    assert refund_ledger.settle(order, after, _out(status), actor="t", now=NOW) == (order, after, [])


def test_confirming_waits_for_a_final_answer_about_its_own_processor_refund() -> None:
    order, refund = _refunding()
    order, refund, _ = refund_ledger.settle(order, refund, _out(P.PENDING), actor="t", now=NOW)
    assert refund_ledger.judge(refund, _out(P.PENDING)) is Settlement.NO_CHANGE
    assert refund_ledger.judge(refund, _out(P.SUCCEEDED, pid="re_other")) is Settlement.NO_CHANGE
    _, done, events = refund_ledger.settle(order, refund, _out(P.FAILED), actor="t", now=NOW)
    assert done.status is RefundStatus.FAILED and done.failure_reason == "failed"  # the status when no reason
    assert [e.type for e in events] == ["refund-error"]


def test_a_failure_after_success_is_a_late_failure_unless_finance_paid_by_hand() -> None:
    order, refund = _refunding()
    order, refund, _ = refund_ledger.settle(order, refund, _out(P.SUCCEEDED), actor="t", now=NOW)
    assert refund_ledger.judge(refund, _out(P.SUCCEEDED)) is Settlement.NO_CHANGE
    assert refund_ledger.judge(refund, _out(P.FAILED)) is Settlement.LATE_FAILURE
    assert refund_ledger.judge(refund, _out(P.CANCELED)) is Settlement.LATE_FAILURE
    news = _out(P.FAILED, reason="lost_card")
    late_order, late, events = refund_ledger.settle(order, refund, news, actor="p", now=NOW)
    assert late.status is RefundStatus.FAILED and events[0].data["after_success"]
    assert late_order.refunded_total == eur(0) and late_order.tickets[0].is_valid
    # Finance paid it by hand; the processor's failure of its own attempt is not news.
    order, paid, _ = refund_ledger.apply(late_order, late, RefundAction.SUCCEEDED, actor="fin", now=NOW, reference="B1")
    assert refund_ledger.judge(paid, _out(P.FAILED)) is Settlement.PAID_MANUALLY
    assert refund_ledger.settle(order, paid, _out(P.FAILED), actor="p", now=NOW)[2] == []


def test_a_retried_refund_takes_news_of_its_new_attempt_only() -> None:
    order, refund = _refunding()
    order, failed, _ = refund_ledger.settle(order, refund, _out(P.FAILED), actor="t", now=NOW)
    assert refund_ledger.judge(failed, _out(P.FAILED)) is Settlement.NO_CHANGE  # the failure it records
    retried = refund_ledger.apply(order, failed, RefundAction.RETRY, actor="fin", now=NOW)[1]
    assert retried.processor_refund_id is None and retried.attempt == 2
    assert refund_ledger.judge(retried, _out(P.SUCCEEDED, pid="re_2")) is Settlement.MOVE


def _timed_out():
    """Confirming, then the confirmation window ran out with the processor's refund still pending."""
    order, refund = _refunding()
    order, refund, _ = refund_ledger.settle(order, refund, _out(P.PENDING), actor="t", now=NOW)
    order, refund, _ = refund_ledger.apply(
        order, refund, RefundAction.FAILED, actor="t", now=NOW, reason="confirmation-timeout"
    )
    return order, refund


def test_a_refund_error_whose_own_refund_pays_later_is_refunded() -> None:
    order, error = _timed_out()
    assert error.processor_refund_id == "re_1" and order.tickets[0].is_valid
    assert refund_ledger.judge(error, _out(P.PENDING)) is Settlement.NO_CHANGE
    assert refund_ledger.judge(error, _out(P.SUCCEEDED, pid="re_other")) is Settlement.NO_CHANGE  # not its own
    assert refund_ledger.judge(error, _out(P.SUCCEEDED)) is Settlement.LATE_ANSWER
    paid_order, paid, events = refund_ledger.settle(order, error, _out(P.SUCCEEDED), actor="p", now=NOW)
    assert paid.status is RefundStatus.SUCCEEDED and paid.processor_refund_id == "re_1"
    assert paid.failure_reason is None and [e.type for e in events] == ["item-refunded"]
    assert paid_order.refunded_total == error.amount and paid_order.pending_refund_total == eur(0)
    assert paid_order.tickets[0].state is TicketState.REFUNDED and paid_order.tickets[1].is_valid
    # Heard twice (webhook and reconciliation): nothing the second time.
    assert refund_ledger.judge(paid, _out(P.SUCCEEDED)) is Settlement.NO_CHANGE
    assert refund_ledger.settle(paid_order, paid, _out(P.SUCCEEDED), actor="p", now=NOW)[2] == []


def test_a_refund_error_whose_own_refund_fails_later_keeps_it_with_the_processors_reason() -> None:
    order, error = _timed_out()
    news = _out(P.FAILED, reason="expired_or_canceled_card")
    assert refund_ledger.judge(error, news) is Settlement.LATE_ANSWER
    same_order, failed, events = refund_ledger.settle(order, error, news, actor="p", now=NOW)
    assert failed.status is RefundStatus.FAILED and failed.failure_reason == "expired_or_canceled_card"
    assert [e.type for e in events] == ["refund-error"] and events[0].data["late_answer"]
    assert same_order == order  # no money, no ticket moves
    assert refund_ledger.judge(failed, news) is Settlement.NO_CHANGE


def test_a_refund_error_without_its_own_refund_takes_no_news() -> None:
    """Refused at submission (no processor refund recorded): a paid refund under its key is finance's (retry)."""
    order, refund = _refunding()
    order, error, _ = refund_ledger.apply(order, refund, RefundAction.FAILED, actor="t", now=NOW, reason="no")
    assert error.processor_refund_id is None
    assert refund_ledger.judge(error, _out(P.SUCCEEDED)) is Settlement.NO_CHANGE


def test_a_late_success_the_order_has_no_room_for_is_left_to_reconciliation() -> None:
    """Its amount went to another refund meanwhile (paid twice): the ledger cannot take it; over-refunded says so."""
    order, error = _timed_out()
    full = order.model_copy(update={"refunded_total": order.payment.amount})
    assert refund_ledger.settle(full, error, _out(P.SUCCEEDED), actor="p", now=NOW) == (full, error, [])


def test_done_already_recognises_each_actions_result() -> None:
    order, refund = _refunding()
    assert not refund_ledger.done_already(refund, RefundAction.SUBMITTED, 1)
    order, sub, _ = refund_ledger.apply(
        order, refund, RefundAction.SUBMITTED, actor="t", now=NOW, processor_refund_id="r"
    )
    assert refund_ledger.done_already(sub, RefundAction.SUBMITTED, 1)
    order, failed, _ = refund_ledger.apply(order, sub, RefundAction.FAILED, actor="t", now=NOW, reason="x")
    assert refund_ledger.done_already(failed, RefundAction.FAILED, 1)
    _, again, _ = refund_ledger.apply(order, failed, RefundAction.RETRY, actor="fin", now=NOW)
    assert refund_ledger.done_already(again, RefundAction.RETRY, 1)  # attempt 1's retry made attempt 2
    assert not refund_ledger.done_already(again, RefundAction.RETRY, 2)
    with pytest.raises(InvalidTransition):
        refund_ledger.apply(order, again, RefundAction.APPROVE, actor="x", now=NOW)


def test_the_events_threshold_overrides_the_setting() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2)
    request = RefundRequest(kind=RefundKind.FULL, reason="cannot attend")
    quote = quote_refund(order, event, request, CAPABILITIES[order.payment.processor])
    assert needs_approval(quote, event, quote.amount.amount - 1)
    assert not needs_approval(quote, event, None)
    own = event.model_copy(update={"policy": EventPolicy(refund_approval_threshold=quote.amount.amount)})
    assert not needs_approval(quote, own, 0)  # the event's own threshold, not the setting's 0
    stricter = event.model_copy(update={"policy": EventPolicy(refund_approval_threshold=0)})
    assert needs_approval(quote, stricter, None)


def _refund_of(order, event, kind: RefundKind, **kw):
    quote = quote_refund(
        order, event, RefundRequest(kind=kind, reason="customer asked", **kw), CAPABILITIES[order.payment.processor]
    )
    return refund_ledger.open_refund(
        order,
        quote,
        refund_id=f"rf_{kind.value}",
        workflow_id="refund/X/2",
        actor="agent",
        now=NOW,
        needs_approval=False,
    )[:2]


def test_order_status_follows_its_refunds_partly_refunded_refunded_and_paid_again() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2)  # its service fee is kept: refunded still means all we refund
    first_order, first = _refund_of(order, event, RefundKind.TICKETS, ticket_ids=[order.tickets[0].id])
    assert first_order.status is OrderStatus.PAID  # money on its way is not money back
    partly, _, _ = refund_ledger.settle(first_order, first, _out(P.SUCCEEDED), actor="t", now=NOW)
    assert partly.status is OrderStatus.PAID and partly.display_status == "partly-refunded"

    rest_order, rest = _refund_of(partly, event, RefundKind.FULL)
    assert rest_order.status is OrderStatus.PAID  # the rest is pending
    done, settled, _ = refund_ledger.settle(rest_order, rest, _out(P.SUCCEEDED, pid="re_2"), actor="t", now=NOW)
    assert done.status is OrderStatus.REFUNDED and done.display_status == "refunded"

    # Stripe fails the second refund days later: money is owed again, so the order is paid (partly refunded).
    reopened, failed, events = refund_ledger.settle(
        done, settled, _out(P.FAILED, pid="re_2", reason="expired_or_canceled_card"), actor="t", now=NOW
    )
    assert failed.status is RefundStatus.FAILED and [e.type for e in events] == ["refund-error"]
    assert reopened.status is OrderStatus.PAID and reopened.display_status == "partly-refunded"

    # Finance pays it by hand: refunded again.
    again, _, _ = refund_ledger.apply(reopened, failed, RefundAction.SUCCEEDED, actor="f", now=NOW, reference="B-1")
    assert again.status is OrderStatus.REFUNDED


def test_a_cancelled_order_keeps_its_status_when_refunded() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=1).model_copy(update={"status": OrderStatus.CANCELLED})
    pending, refund = _refund_of(order, event, RefundKind.FULL)
    after, _, _ = refund_ledger.settle(pending, refund, _out(P.SUCCEEDED), actor="t", now=NOW)
    assert after.status is OrderStatus.CANCELLED and after.refunded_total.amount > 0


def test_a_free_order_is_refunded_when_its_refund_takes_every_ticket() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2, method=PaymentMethod.FREE)
    one, _ = _refund_of(order, event, RefundKind.TICKETS, ticket_ids=[order.tickets[0].id])
    assert one.status is OrderStatus.PAID
    every, _ = _refund_of(one, event, RefundKind.TICKETS, ticket_ids=[order.tickets[1].id])
    assert every.status is OrderStatus.REFUNDED


KEY_1, KEY_2 = "refund/X/1/attempt-1", "refund/X/1/attempt-2"


def _cand(pid: str, status: P, key: str | None) -> refund_ledger.ProcessorCandidate:
    return refund_ledger.ProcessorCandidate(outcome=_out(status, pid), idempotency_key=key)


@pytest.mark.parametrize(
    ("found", "adopted"),
    [
        ([], None),
        # This attempt's own refund, whatever it says: the answer a lost response kept from us.
        ([_cand("re_a", P.SUCCEEDED, KEY_2)], "re_a"),
        ([_cand("re_a", P.FAILED, KEY_2)], "re_a"),
        # An earlier attempt that paid later (its confirmation timed out): adopted, never paid again.
        ([_cand("re_1", P.SUCCEEDED, KEY_1)], "re_1"),
        ([_cand("re_1", P.PENDING, KEY_1)], "re_1"),
        ([_cand("re_1", P.REQUIRES_ACTION, None)], "re_1"),
        # An earlier attempt that failed or was canceled moved no money: the retry submits anew.
        ([_cand("re_1", P.FAILED, KEY_1), _cand("re_0", P.CANCELED, None)], None),
        # Paid already beats may-pay, and beats this attempt's own failure.
        ([_cand("re_2", P.FAILED, KEY_2), _cand("re_1", P.SUCCEEDED, KEY_1)], "re_1"),
        ([_cand("re_2", P.PENDING, KEY_2), _cand("re_1", P.SUCCEEDED, KEY_1)], "re_1"),
        # Two that may pay: this attempt's own first.
        ([_cand("re_1", P.PENDING, KEY_1), _cand("re_2", P.PENDING, KEY_2)], "re_2"),
    ],
)
def test_a_submission_adopts_a_refund_of_ours_that_paid_or_may_pay(
    found: list[refund_ledger.ProcessorCandidate], adopted: str | None
) -> None:
    chosen = refund_ledger.to_adopt(KEY_2, found)
    assert (chosen.processor_refund_id if chosen else None) == adopted
    assert refund_ledger.to_adopt(KEY_2, list(reversed(found))) == chosen  # the order found does not matter
