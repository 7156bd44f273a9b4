"""The invariants ticketops promises, as pure checks: each returns the findings that break one.

`ticketops audit` (operators, against production) and the fault soak (its oracle) read
the store and the processor and call these. A finding names its check, its subject
(an order, a ticket, a Message-ID, a refund) and what was seen; no personal data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from ticketing.calendar import add_business_days
from ticketing.models import Order, Processor, Refund
from ticketing.reconciliation_records import BalanceEntry
from ticketing.states import OrderStatus, RefundStatus


class Check(StrEnum):
    # money
    ORDER_TOTALS = "order-totals-differ-from-ledger"
    OVER_REFUNDED = "refunded-beyond-paid"
    PROCESSOR_TOTALS = "processor-totals-differ-from-ledger"
    # tickets
    VALID_ON_CANCELLED = "valid-ticket-on-cancelled-order"
    VALID_BUT_REFUNDED = "valid-ticket-refunded"
    DUPLICATE_BARCODE = "duplicate-barcode"
    # emails
    DELIVERY_UNRESOLVED = "delivery-unresolved"
    SENT_TWICE = "message-id-sent-twice"
    # operations
    CONFIRMING_OVERDUE = "refund-confirming-past-window"
    MANUAL_UNREMINDED = "manual-refund-without-reminder"


# Which figure of the soak's line each check counts in.
FIGURE = {
    Check.ORDER_TOTALS: "impossible",
    Check.OVER_REFUNDED: "doubled",
    Check.PROCESSOR_TOTALS: "doubled",
    Check.VALID_ON_CANCELLED: "impossible",
    Check.VALID_BUT_REFUNDED: "impossible",
    Check.DUPLICATE_BARCODE: "impossible",
    Check.DELIVERY_UNRESOLVED: "lost",
    Check.SENT_TWICE: "duplicate Message-IDs",
    Check.CONFIRMING_OVERDUE: "stuck",
    Check.MANUAL_UNREMINDED: "stuck",
}


class AuditFinding(BaseModel):
    check: Check
    subject: str
    detail: dict[str, Any] = {}


# Refund statuses whose amount the order holds as pending, and those whose tickets stay invalid.
_PENDING = frozenset(
    {
        RefundStatus.REQUESTED,
        RefundStatus.AWAITING_APPROVAL,
        RefundStatus.AWAITING_MANUAL,
        RefundStatus.REFUNDING,
        RefundStatus.CONFIRMING,
    }
)
_HOLDS_TICKETS = _PENDING | {RefundStatus.SUCCEEDED}


def ledger_sums(refunds: Iterable[Refund]) -> tuple[int, int]:
    """(refunded, pending) as the ledger rows make them: free refunds move no totals."""
    refunded = pending = 0
    for r in refunds:
        if r.processor is Processor.FREE:
            continue
        if r.status is RefundStatus.SUCCEEDED:
            refunded += r.amount.amount
        elif r.status in _PENDING:
            pending += r.amount.amount
    return refunded, pending


def check_order_money(order: Order, refunds: Sequence[Refund]) -> list[AuditFinding]:
    """The order's totals are the sum of its ledger rows, and never more than was paid."""
    found: list[AuditFinding] = []
    refunded, pending = ledger_sums(refunds)
    if (order.refunded_total.amount, order.pending_refund_total.amount) != (refunded, pending):
        found.append(
            AuditFinding(
                check=Check.ORDER_TOTALS,
                subject=order.code,
                detail={
                    "order": {"refunded": order.refunded_total.amount, "pending": order.pending_refund_total.amount},
                    "ledger": {"refunded": refunded, "pending": pending},
                    "currency": order.currency,
                },
            )
        )
    paid = order.paid_total.amount
    if max(refunded + pending, order.refunded_total.amount + order.pending_refund_total.amount) > paid:
        found.append(
            AuditFinding(
                check=Check.OVER_REFUNDED,
                subject=order.code,
                detail={"paid": paid, "refunded": refunded, "pending": pending, "currency": order.currency},
            )
        )
    return found


def check_order_tickets(order: Order, refunds: Sequence[Refund]) -> list[AuditFinding]:
    """No valid ticket on a cancelled order, nor one a live or settled refund invalidated."""
    found: list[AuditFinding] = []
    valid = {t.id for t in order.tickets if t.is_valid}
    if order.status is OrderStatus.CANCELLED:
        found += [
            AuditFinding(check=Check.VALID_ON_CANCELLED, subject=tid, detail={"order": order.code})
            for tid in sorted(valid)
        ]
    for refund in refunds:
        if refund.status in _HOLDS_TICKETS:
            found += [
                AuditFinding(
                    check=Check.VALID_BUT_REFUNDED,
                    subject=tid,
                    detail={"order": order.code, "refund": refund.id, "refund_status": refund.status.value},
                )
                for tid in sorted(valid & set(refund.ticket_ids))
            ]
    return found


def check_barcodes(valid: Iterable[tuple[str, str]]) -> list[AuditFinding]:
    """(barcode, ticket id) of every valid ticket: a barcode opens one gate."""
    holders: dict[str, list[str]] = {}
    for barcode, ticket_id in valid:
        holders.setdefault(barcode, []).append(ticket_id)
    return [
        AuditFinding(check=Check.DUPLICATE_BARCODE, subject=barcode, detail={"tickets": sorted(ids)})
        for barcode, ids in sorted(holders.items())
        if len(ids) > 1
    ]


class OpenDelivery(BaseModel):
    message_id: str
    workflow_id: str
    kind: str
    status: str
    reason: str | None = None
    claimed_at: datetime


def check_deliveries(open_rows: Iterable[OpenDelivery], *, now: datetime, window: timedelta) -> list[AuditFinding]:
    """A claimed message is sent, failed, deferred or skipped within its window; `queued` past it is lost."""
    return [
        AuditFinding(
            check=Check.DELIVERY_UNRESOLVED,
            subject=row.message_id,
            detail={
                "workflow_id": row.workflow_id, "kind": row.kind, "status": row.status,
                "reason": row.reason, "claimed_at": row.claimed_at.isoformat(),
            },
        )
        for row in open_rows
        if row.claimed_at < now - window
    ]


def check_sent_once(sent: Iterable[tuple[str, str]]) -> list[AuditFinding]:
    """(Message-ID, where it was recorded) once per sending: the log, an order's history, the mail
    relay's files. One message recorded twice in the same place went out twice."""
    seen: Counter[tuple[str, str]] = Counter((mid.strip().strip("<>"), where) for mid, where in sent)
    twice: dict[str, dict[str, int]] = {}
    for (mid, where), count in seen.items():
        if count > 1:
            twice.setdefault(mid, {})[where] = count
    return [
        AuditFinding(check=Check.SENT_TWICE, subject=mid, detail={"recorded": places})
        for mid, places in sorted(twice.items())
    ]


def check_refund_deadline(
    refund: Refund,
    *,
    now: datetime,
    confirmation_business_days: int,
    remind_after: timedelta,
    told: bool,
) -> list[AuditFinding]:
    """A refund waiting past its deadline has told someone: confirming past the processor's window is
    an error finance hears of; awaiting manual payment past the reminder delay has sent a reminder."""
    detail = {"order": refund.order_code, "status": refund.status.value, "since": refund.updated_at.isoformat()}
    if told:
        return []
    if refund.status is RefundStatus.CONFIRMING and now > add_business_days(
        refund.updated_at, confirmation_business_days
    ):
        return [AuditFinding(check=Check.CONFIRMING_OVERDUE, subject=refund.id, detail=detail)]
    if refund.status is RefundStatus.AWAITING_MANUAL and now - refund.updated_at > remind_after:
        return [AuditFinding(check=Check.MANUAL_UNREMINDED, subject=refund.id, detail=detail)]
    return []


def processor_refunded_totals(entries: Iterable[BalanceEntry]) -> dict[str, int]:
    """{currency: minor units} the processor's balance says went back to buyers (refunds less failures)."""
    totals: dict[str, int] = {}
    for entry in entries:
        if entry.type in ("refund", "refund_failure"):
            # A refund takes money out (negative); the figure is what went back to buyers.
            totals[entry.currency] = totals.get(entry.currency, 0) - entry.amount
    return totals


def compare_totals(processor: Mapping[str, int], ledger: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Per currency: the processor's figure, the ledger's, and their difference."""
    return {
        cur: {
            "processor": processor.get(cur, 0),
            "ledger": ledger.get(cur, 0),
            "difference": processor.get(cur, 0) - ledger.get(cur, 0),
        }
        for cur in sorted(set(processor) | set(ledger))
    }


def check_processor_totals(
    processor: Processor, window: str, processor_totals: Mapping[str, int], ledger_totals: Mapping[str, int]
) -> list[AuditFinding]:
    return [
        AuditFinding(check=Check.PROCESSOR_TOTALS, subject=f"{processor.value}:{cur}", detail={"window": window, **t})
        for cur, t in compare_totals(processor_totals, ledger_totals).items()
        if t["difference"]
    ]
