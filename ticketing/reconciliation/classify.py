"""Classifying one window: the ledger's refunds against the processor's, exact in minor units.

Status disagreements are judged by the one refund rule (`refund_ledger.judge`):
reconciliation never translates a processor status into a ledger move itself.
What the rule would move is a disagreement the run can heal (by telling the
refund's own workflow); what it would not move but still disagrees is an item
for finance. Refunds younger than the settlement lag never reach here: the
window ends `settlement_lag` before the run's `as_of`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from ticketing.calendar import add_business_days
from ticketing.models import Refund
from ticketing.processor_news import NewsRoute, route_news
from ticketing.reconciliation.items import DiscrepancyClass as C
from ticketing.reconciliation.items import SuggestedAction as A
from ticketing.reconciliation.models import Finding
from ticketing.reconciliation_records import (
    BalanceEntry,
    ProcessorRefundRecord,
    ProcessorRefundStatus,
    UndeliveredEvent,
)
from ticketing.refund_ledger import ProcessorOutcome, Settlement, judge
from ticketing.states import RefundStatus

PAYING = frozenset(
    {ProcessorRefundStatus.SUCCEEDED, ProcessorRefundStatus.PENDING, ProcessorRefundStatus.REQUIRES_ACTION}
)
NON_FINAL_LEDGER = frozenset(
    {
        RefundStatus.REQUESTED,
        RefundStatus.AWAITING_APPROVAL,
        RefundStatus.AWAITING_MANUAL,
        RefundStatus.REFUNDING,
        RefundStatus.CONFIRMING,
    }
)
# Ledger states that say the processor has (or had) our refund.
SUBMITTED_LEDGER = frozenset({RefundStatus.CONFIRMING, RefundStatus.SUCCEEDED})


class Ages(BaseModel):
    """When waiting becomes a disagreement; `as_of` is the run's scheduled start, not the clock."""

    as_of: datetime
    pending_overdue_business_days: int = 10
    manual_stale_days: float = 14.0
    approval_expiry_hours: float = 48.0


class LedgerSide(BaseModel):
    """A ledger refund with what classification needs from its order and its workflow."""

    refund: Refund
    payment_reference: str | None
    refundable_max: int  # paid minus fees never refunded: what the ledger allows in all
    workflow_open: bool | None = None  # None: not asked (the refund is final)


def ledger_evidence(side: LedgerSide) -> dict[str, Any]:
    r = side.refund
    return {
        "refund_id": r.id,
        "order_code": r.order_code,
        "status": r.status.value,
        "amount": r.amount.amount,
        "currency": r.amount.currency,
        "attempt": r.attempt,
        "idempotency_key": r.idempotency_key,
        "processor_refund_id": r.processor_refund_id,
        "workflow_id": r.workflow_id,
        "workflow_open": side.workflow_open,
        "manual_reference": r.manual_reference,
        "failure_reason": r.failure_reason,
        "payment_reference": side.payment_reference,
        "created_at": r.created_at.isoformat(),
        "updated_at": r.updated_at.isoformat(),
    }


def processor_evidence(p: ProcessorRefundRecord) -> dict[str, Any]:
    return {
        "id": p.id,
        "status": p.status.value,
        "amount": p.amount,
        "currency": p.currency,
        "payment_reference": p.payment_reference,
        "failure_reason": p.failure_reason,
        "pending_reason": p.pending_reason,
        "ledger_refund_id": p.ledger_refund_id,
        "idempotency_key": p.idempotency_key,
        "order_code": p.order_code,
        "balance_transaction": p.balance_transaction,
        "failure_balance_transaction": p.failure_balance_transaction,
        "created_at": p.created_at.isoformat(),
    }


def _finding(
    cls: C, key: str, action: A, side: LedgerSide | None, p: ProcessorRefundRecord | None, **extra: Any
) -> Finding:
    proc = processor_evidence(p) if p is not None else None
    if proc is not None and extra:
        proc |= extra
    elif extra:
        proc = extra
    refund = side.refund if side else None
    return Finding(
        cls=cls,
        key=key,
        action=action,
        ledger=ledger_evidence(side) if side else None,
        processor=proc,
        refund_id=refund.id if refund else (p.ledger_refund_id if p else None),
        processor_refund_id=p.id if p else (refund.processor_refund_id if refund else None),
        order_code=refund.order_code if refund else (p.order_code if p else None),
        amount=refund.amount.amount if refund else (p.amount if p else None),
        currency=refund.amount.currency if refund else (p.currency if p else None),
    )


def current_attempt(side: LedgerSide, records: Sequence[ProcessorRefundRecord]) -> ProcessorRefundRecord | None:
    """The processor refund the ledger's current attempt is about: by its id, else by its key."""
    r = side.refund
    if r.processor_refund_id:
        return next((p for p in records if p.id == r.processor_refund_id), None)
    return next((p for p in records if p.idempotency_key == r.idempotency_key), None)


_HEAL_BY_ROUTE = {
    NewsRoute.SIGNAL_RUN: A.SIGNAL_REFUND,
    NewsRoute.START_RUN_WITH_NEWS: A.RESTART_REFUND,
    NewsRoute.START_LATE_FAILURE: A.START_LATE_FAILURE,
    NewsRoute.START_LATE_ANSWER: A.START_LATE_ANSWER,
}


def heal_route(side: LedgerSide, outcome: ProcessorOutcome) -> A | None:
    """How the run makes the refund rule's move happen: as the webhook would have (`route_news`)."""
    return _HEAL_BY_ROUTE.get(route_news(side.refund, outcome, run_open=bool(side.workflow_open)))


def classify_refund(
    side: LedgerSide,
    records: Sequence[ProcessorRefundRecord],
    *,
    balance: Sequence[BalanceEntry] | None = (),
    events: Sequence[UndeliveredEvent] = (),
    ages: Ages,
    complete: bool,
) -> list[Finding]:
    """One ledger refund against every processor refund that names it (or is its current attempt).

    `complete`: the records are every refund the processor has on the payment (not just the window),
    so an absent current attempt is missing at the processor rather than outside the window.
    `balance` None: the balance entries are not at hand (a refund from another window); not judged.
    """
    r = side.refund
    found: list[Finding] = []
    current = current_attempt(side, records)
    # Paid more than once for one ledger refund: two paying processor refunds, or one beside ours.
    paying = {p.id: p for p in records if p.status in PAYING and (p.ledger_refund_id == r.id or p is current)}
    own_elsewhere = (
        r.processor_refund_id is not None
        and r.processor_refund_id not in paying
        and current is None
        and r.status in SUBMITTED_LEDGER
        and r.manual_reference is None
    )
    if len(paying) + (1 if own_elsewhere else 0) > 1:
        extra = sorted(paying)
        found.append(
            _finding(
                C.DUPLICATE_AT_PROCESSOR, r.id, A.RECOVER_DUPLICATE, side, current,
                paying_refunds=extra, paid_twice=sum(paying[i].amount for i in extra)
                + (r.amount.amount if own_elsewhere else 0) - r.amount.amount,
            )
        )
    if current is None:
        if complete and r.status in SUBMITTED_LEDGER and r.manual_reference is None:
            found.append(_finding(C.MISSING_AT_PROCESSOR, r.id, A.INVESTIGATE, side, None))
        return found
    if current.currency != r.amount.currency:
        found.append(_finding(C.CURRENCY_MISMATCH, r.id, A.INVESTIGATE, side, current))
    elif current.amount != r.amount.amount:
        found.append(
            _finding(
                C.AMOUNT_MISMATCH, r.id, A.INVESTIGATE, side, current, difference=current.amount - r.amount.amount
            )
        )
    outcome = ProcessorOutcome(
        processor_refund_id=current.id, status=current.status, failure_reason=current.failure_reason
    )
    settlement = judge(r, outcome)
    if settlement is Settlement.LATE_ANSWER and current.status is not ProcessorRefundStatus.SUCCEEDED:
        settlement = Settlement.NO_CHANGE  # both say failed; only the reason's words differ: no disagreement
    route = heal_route(side, outcome)
    if settlement in (Settlement.MOVE, Settlement.LATE_FAILURE, Settlement.LATE_ANSWER):
        missed = sorted((e for e in events if e.processor_refund_id == current.id), key=lambda e: e.id)
        if missed:  # the news was sent and never reached us: one item, keyed by the first event
            found.append(
                _finding(
                    C.MISSED_WEBHOOK, missed[0].id, A.REPLAY_EVENT if route else A.INVESTIGATE, side, current,
                    event_id=missed[0].id, event_type=missed[0].type,
                    events=[[e.id, e.type] for e in missed], settlement=settlement.value,
                    route=route.value if route else None,
                )
            )
        elif (
            settlement is Settlement.MOVE
            and current.status not in (ProcessorRefundStatus.SUCCEEDED, ProcessorRefundStatus.FAILED,
                                       ProcessorRefundStatus.CANCELED)
        ):
            found += _pending(side, current, ages)  # refunding -> confirming is no disagreement by itself
        else:
            found.append(
                _finding(
                    C.STATUS_MISMATCH, r.id, route or A.INVESTIGATE, side, current, settlement=settlement.value,
                    route=route.value if route else None,
                )
            )
    elif settlement is Settlement.NO_CHANGE:
        found += _unhealable_status(side, current, ages)
    if balance is not None and current.status is ProcessorRefundStatus.SUCCEEDED and not _moved(current, balance):
        found.append(
            _finding(
                C.MONEY_MOVEMENT, current.id, A.INVESTIGATE, side, current,
                balance_entries=[b.model_dump(mode="json") for b in balance if b.source == current.id],
            )
        )
    return found


def _moved(p: ProcessorRefundRecord, balance: Sequence[BalanceEntry]) -> bool:
    """A succeeded refund took its exact amount off the balance, in its currency."""
    return any(
        b.source == p.id and b.type == "refund" and abs(b.amount) == p.amount and b.currency == p.currency
        for b in balance
    )


def _pending(side: LedgerSide, p: ProcessorRefundRecord, ages: Ages) -> list[Finding]:
    if p.status not in (ProcessorRefundStatus.PENDING, ProcessorRefundStatus.REQUIRES_ACTION):
        return []
    due = add_business_days(p.created_at, ages.pending_overdue_business_days)
    if ages.as_of <= due:
        return []  # expected: still inside the confirmation window
    return [_finding(C.PENDING_OVERDUE, side.refund.id, A.CHASE_PROCESSOR, side, p, due=due.isoformat())]


def _unhealable_status(side: LedgerSide, p: ProcessorRefundRecord, ages: Ages) -> list[Finding]:
    """The rule would not move the ledger, yet the two sides may still disagree."""
    r = side.refund
    if r.status is RefundStatus.SUCCEEDED and p.status is ProcessorRefundStatus.SUCCEEDED:
        if r.manual_reference is not None:  # finance paid by hand and the processor paid too
            return [_finding(C.DOUBLE_SETTLEMENT, r.id, A.RECOVER_DUPLICATE, side, p)]
        return []
    if r.status is RefundStatus.FAILED and p.status is ProcessorRefundStatus.SUCCEEDED:
        return [_finding(C.STATUS_MISMATCH, r.id, A.MARK_OR_RETRY, side, p, settlement="no-change")]
    if r.status is RefundStatus.REJECTED and p.status in PAYING:
        return [_finding(C.STATUS_MISMATCH, r.id, A.INVESTIGATE, side, p, settlement="no-change")]
    if r.status is RefundStatus.SUCCEEDED and p.status in PAYING:  # refunded, processor still pending
        return [_finding(C.STATUS_MISMATCH, r.id, A.INVESTIGATE, side, p, settlement="no-change")]
    if r.status in (RefundStatus.CONFIRMING, RefundStatus.REFUNDING):
        return _pending(side, p, ages)
    return []


def classify_unknown(
    p: ProcessorRefundRecord, *, ours: bool, ledger_row_named: bool = False
) -> list[Finding]:
    """A processor refund no ledger refund claims: a lost write, a dashboard refund, or not ours."""
    if ledger_row_named:
        return []
    if p.ledger_refund_id is not None:  # our metadata, yet no ledger row: our write was lost
        return [_finding(C.MISSING_IN_LEDGER, p.id, A.RESTORE_LEDGER_ROW, None, p)]
    if ours:
        if p.status not in PAYING:
            return []  # a dashboard refund that failed moved no money
        return [_finding(C.MISSING_IN_LEDGER, p.id, A.CONFIRM_EXTERNAL_REFUND, None, p)]
    return [_finding(C.FOREIGN, p.id, A.NONE, None, p)]


def classify_waiting(side: LedgerSide, ages: Ages) -> list[Finding]:
    """A ledger refund still waiting: is its workflow alive, and has the wait gone on too long?"""
    r = side.refund
    if r.status not in NON_FINAL_LEDGER:
        return []
    if side.workflow_open is False:
        # A restarted run resumes from the ledger's state; in refunding it asks the processor for a refund
        # of ours before it submits, so it adopts one an earlier run made. A requested row was never
        # opened by its run: finance's to look at.
        restartable = r.status is not RefundStatus.REQUESTED
        action = A.RESTART_REFUND if restartable else A.INVESTIGATE
        return [_finding(C.ORPHANED, r.id, action, side, None)]
    if r.status is RefundStatus.AWAITING_MANUAL and ages.as_of - r.updated_at > timedelta(
        days=ages.manual_stale_days
    ):
        return [_finding(C.STALE_MANUAL, r.id, A.PAY_OR_REJECT, side, None)]
    if r.status is RefundStatus.AWAITING_APPROVAL and ages.as_of - r.updated_at > timedelta(
        hours=ages.approval_expiry_hours
    ):
        return [_finding(C.STALE_MANUAL, r.id, A.PAY_OR_REJECT, side, None)]
    return []


def classify_payment(
    payment_reference: str, order_code: str, refundable_max: int, currency: str, paying: Sequence[tuple[str, int]]
) -> list[Finding]:
    """Everything the processor paid back on one payment, against what the ledger allows in all."""
    total = sum(amount for _, amount in paying)
    if total <= refundable_max:
        return []
    return [
        Finding(
            cls=C.OVER_REFUNDED,
            key=payment_reference,
            action=A.RECOVER_DUPLICATE,
            ledger={"order_code": order_code, "refundable_max": refundable_max, "currency": currency},
            processor={
                "payment_reference": payment_reference,
                "refunded": total,
                "refunds": sorted(i for i, _ in paying),
                "over_by": total - refundable_max,
            },
            order_code=order_code,
            amount=total - refundable_max,
            currency=currency,
        )
    ]


_HEALED_BY_STATUS = frozenset({C.STATUS_MISMATCH, C.MISSED_WEBHOOK})


def classify_ledger_refund(
    side: LedgerSide,
    records: Sequence[ProcessorRefundRecord],
    *,
    balance: Sequence[BalanceEntry] | None,
    events: Sequence[UndeliveredEvent] = (),
    ages: Ages,
    complete: bool,
) -> list[Finding]:
    """Everything about one ledger refund: against the processor, and whether it still waits too long.

    An orphan whose status disagreement is already found is that one item (its heal restarts the run).
    """
    found = classify_refund(side, records, balance=balance, events=events, ages=ages, complete=complete)
    waiting = classify_waiting(side, ages)
    if any(f.cls in _HEALED_BY_STATUS for f in found):
        waiting = [f for f in waiting if f.cls is not C.ORPHANED]
    return found + waiting
