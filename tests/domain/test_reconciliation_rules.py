"""Reconciliation's pure rules: expected timing gaps are not disagreements, routing follows the refund
rule, the item state machine refuses what it does not list, and ids are stable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticketing.errors import InvalidTransition
from ticketing.models import Processor, Refund, RefundKind
from ticketing.money import Money
from ticketing.processor_news import NewsRoute, route_news
from ticketing.reconciliation import DiscrepancyClass as C
from ticketing.reconciliation import ItemState, SuggestedAction, item_id, move_item
from ticketing.reconciliation.classify import Ages, LedgerSide, classify_ledger_refund, classify_payment
from ticketing.reconciliation.items import SEVERITY, Severity
from ticketing.reconciliation_records import BalanceEntry, ProcessorRefundRecord, ProcessorRefundStatus
from ticketing.refund_ledger import ProcessorOutcome
from ticketing.states import RefundStatus

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)  # a Monday


def _refund(status: RefundStatus, pid: str | None = "re_1", **kw: object) -> Refund:
    return Refund(
        id="rf_1", order_code="ORD1", kind=RefundKind.FULL, amount=Money(amount=3500, currency="EUR"),
        fees_kept=Money(amount=0, currency="EUR"), reason="r", status=status, processor=Processor.STRIPE,
        workflow_id="refund/ORD1/x", processor_refund_id=pid, requested_by="a", created_at=T0, updated_at=T0,
        **kw,
    )


def _record(status: ProcessorRefundStatus, **kw: object) -> ProcessorRefundRecord:
    fields: dict[str, object] = {
        "processor": Processor.STRIPE, "id": "re_1", "status": status, "amount": 3500, "currency": "EUR",
        "created_at": T0, "payment_reference": "pi_1", "ledger_refund_id": "rf_1",
        "idempotency_key": "refund/ORD1/x/attempt-1",
    }
    return ProcessorRefundRecord.model_validate(fields | kw)


def _moved(amount: int = 3500) -> list[BalanceEntry]:
    return [
        BalanceEntry(
            processor=Processor.STRIPE, id="txn_1", type="refund", reporting_category="refund", source="re_1",
            amount=-amount, currency="EUR", created_at=T0,
        )
    ]


def _classify(refund: Refund, record: ProcessorRefundRecord | None, *, as_of: datetime, open_run: bool = True):
    side = LedgerSide(refund=refund, payment_reference="pi_1", refundable_max=7000, workflow_open=open_run)
    return classify_ledger_refund(
        side, [record] if record else [], balance=_moved(), ages=Ages(as_of=as_of), complete=True
    )


def test_pending_inside_the_confirmation_window_is_expected() -> None:
    refund = _refund(RefundStatus.CONFIRMING)
    pending = _record(ProcessorRefundStatus.PENDING, pending_reason="charge_pending")
    assert _classify(refund, pending, as_of=T0 + timedelta(days=13)) == []  # 10 business days = 14 days
    (late,) = _classify(refund, pending, as_of=T0 + timedelta(days=15))
    assert late.cls is C.PENDING_OVERDUE and late.processor and late.processor["pending_reason"] == "charge_pending"


def test_submitted_and_still_pending_is_no_disagreement() -> None:
    """refunding with a pending processor refund: the rule would move it to confirming, nothing is wrong."""
    assert _classify(_refund(RefundStatus.REFUNDING, pid=None), _record(ProcessorRefundStatus.PENDING),
                     as_of=T0 + timedelta(days=1)) == []


def test_a_retry_that_adopted_an_earlier_attempts_refund_agrees() -> None:
    """Attempt 2 adopted attempt 1's late success (its key says attempt-1): no disagreement, no duplicate;
    and attempt 1's failed refund beside attempt 2's paid one is none either."""
    adopted = _refund(RefundStatus.SUCCEEDED, attempt=2)
    assert _classify(adopted, _record(ProcessorRefundStatus.SUCCEEDED), as_of=T0 + timedelta(days=2)) == []
    side = LedgerSide(refund=_refund(RefundStatus.SUCCEEDED, pid="re_2", attempt=2), payment_reference="pi_1",
                      refundable_max=7000, workflow_open=False)
    failed_first = _record(ProcessorRefundStatus.FAILED)
    paid_second = _record(ProcessorRefundStatus.SUCCEEDED, id="re_2", idempotency_key="refund/ORD1/x/attempt-2")
    balance = [*_moved(), _moved()[0].model_copy(update={"id": "txn_2", "source": "re_2"})]
    found = classify_ledger_refund(
        side, [failed_first, paid_second], balance=balance, ages=Ages(as_of=T0 + timedelta(days=2)), complete=True
    )
    assert found == []


def test_agreement_in_every_final_pair() -> None:
    as_of = T0 + timedelta(days=2)
    assert _classify(_refund(RefundStatus.SUCCEEDED), _record(ProcessorRefundStatus.SUCCEEDED), as_of=as_of) == []
    assert _classify(_refund(RefundStatus.FAILED), _record(ProcessorRefundStatus.FAILED), as_of=as_of) == []
    # Finance paid by hand after the processor failed: not news.
    paid = _refund(RefundStatus.SUCCEEDED, manual_reference="BANK-1")
    assert _classify(paid, _record(ProcessorRefundStatus.FAILED), as_of=as_of) == []


def test_a_refund_error_its_own_refund_paid_later_is_healed_and_a_late_failure_is_no_item() -> None:
    as_of = T0 + timedelta(days=2)
    timed_out = _refund(RefundStatus.FAILED, failure_reason="confirmation-timeout")
    (closed,) = _classify(timed_out, _record(ProcessorRefundStatus.SUCCEEDED), as_of=as_of, open_run=False)
    assert (closed.cls, closed.action) == (C.STATUS_MISMATCH, SuggestedAction.START_LATE_ANSWER)
    assert closed.processor and closed.processor["settlement"] == "late-answer"
    (waiting,) = _classify(timed_out, _record(ProcessorRefundStatus.SUCCEEDED), as_of=as_of, open_run=True)
    assert waiting.action is SuggestedAction.SIGNAL_REFUND
    # Both say failed; only the words differ (the run updates them when it hears): nothing to report.
    assert _classify(timed_out, _record(ProcessorRefundStatus.FAILED, failure_reason="lost_card"), as_of=as_of) == []
    # No processor refund of its own recorded: finance's (the retry adopts the paid one).
    (unknown,) = _classify(
        _refund(RefundStatus.FAILED, pid=None), _record(ProcessorRefundStatus.SUCCEEDED), as_of=as_of
    )
    assert unknown.action is SuggestedAction.MARK_OR_RETRY


def test_exact_in_minor_units() -> None:
    record = _record(ProcessorRefundStatus.SUCCEEDED, amount=3499)
    side = LedgerSide(refund=_refund(RefundStatus.SUCCEEDED), payment_reference="pi_1", refundable_max=7000)
    found = classify_ledger_refund(side, [record], balance=_moved(3499), ages=Ages(as_of=T0), complete=True)
    assert [(f.cls, f.processor and f.processor["difference"]) for f in found] == [(C.AMOUNT_MISMATCH, -1)]
    assert classify_payment("pi_1", "ORD1", 7000, "EUR", [("re_1", 3500), ("re_2", 3500)]) == []
    (over,) = classify_payment("pi_1", "ORD1", 7000, "EUR", [("re_1", 3500), ("re_2", 3501)])
    assert over.amount == 1


@pytest.mark.parametrize(
    ("status", "run_open", "processor", "route"),
    [
        (RefundStatus.CONFIRMING, True, ProcessorRefundStatus.SUCCEEDED, NewsRoute.SIGNAL_RUN),
        (RefundStatus.CONFIRMING, False, ProcessorRefundStatus.FAILED, NewsRoute.START_RUN_WITH_NEWS),
        (RefundStatus.SUCCEEDED, False, ProcessorRefundStatus.FAILED, NewsRoute.START_LATE_FAILURE),
        (RefundStatus.SUCCEEDED, True, ProcessorRefundStatus.SUCCEEDED, NewsRoute.NO_CHANGE),
        # A refund-error's own processor refund paid later: its run waiting for finance, else the follow-up run.
        (RefundStatus.FAILED, False, ProcessorRefundStatus.SUCCEEDED, NewsRoute.START_LATE_ANSWER),
        (RefundStatus.FAILED, True, ProcessorRefundStatus.SUCCEEDED, NewsRoute.SIGNAL_RUN),
        (RefundStatus.FAILED, True, ProcessorRefundStatus.FAILED, NewsRoute.NO_CHANGE),
        # A restarted run in refunding looks for a refund of ours before it submits: it adopts this one.
        (RefundStatus.REFUNDING, False, ProcessorRefundStatus.SUCCEEDED, NewsRoute.START_RUN_WITH_NEWS),
    ],
)
def test_news_routes_as_the_webhook_does(
    status: RefundStatus, run_open: bool, processor: ProcessorRefundStatus, route: NewsRoute
) -> None:
    refund = _refund(status, pid=None if status is RefundStatus.REFUNDING else "re_1")
    outcome = ProcessorOutcome(processor_refund_id="re_1", status=processor)
    assert route_news(refund, outcome, run_open=run_open) is route


def test_refunding_without_a_run_is_restarted_and_requested_is_not() -> None:
    """A restarted run in refunding adopts what an earlier run made before it submits (it asks the processor
    first), so it is healed; a requested row was never opened by its run: finance decides."""
    (item,) = _classify(_refund(RefundStatus.REFUNDING, pid=None), None, as_of=T0, open_run=False)
    assert (item.cls, item.action) == (C.ORPHANED, SuggestedAction.RESTART_REFUND) and item.heals
    (item,) = _classify(_refund(RefundStatus.REQUESTED, pid=None), None, as_of=T0, open_run=False)
    assert (item.cls, item.action) == (C.ORPHANED, SuggestedAction.INVESTIGATE) and not item.heals


def test_item_state_machine_and_ids() -> None:
    assert move_item(ItemState.OPEN, ItemState.ACKNOWLEDGED) is ItemState.ACKNOWLEDGED
    assert move_item(ItemState.ACKNOWLEDGED, ItemState.RESOLVED) is ItemState.RESOLVED
    assert move_item(ItemState.RESOLVED, ItemState.OPEN) is ItemState.OPEN
    with pytest.raises(InvalidTransition):
        move_item(ItemState.ACKNOWLEDGED, ItemState.OPEN)
    with pytest.raises(InvalidTransition):
        move_item(ItemState.RESOLVED, ItemState.ACKNOWLEDGED)
    assert item_id("stripe", C.ORPHANED, "rf_1") == item_id("stripe", C.ORPHANED, "rf_1")
    assert item_id("stripe", C.ORPHANED, "rf_1") != item_id("stripe", C.STALE_MANUAL, "rf_1")
    assert max(SEVERITY, key=lambda c: SEVERITY[c]) is C.DUPLICATE_AT_PROCESSOR
    assert SEVERITY[C.FOREIGN] is Severity.INFO and set(SEVERITY) == set(C)
