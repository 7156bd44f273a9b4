"""Reconciliation scenarios: a ledger written through the real store, and a processor faked at the
network boundary (an in-memory `ReconciliationSource`), so each discrepancy can be made exactly.

Each injection writes its ledger side, adds its processor side to the fake, and
returns the (class, key) items a run must find for it, nothing more.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from temporalio.client import Client

from payment_adapters.base import ProcessorUnavailable
from tests.builders import make_event, make_order
from tests.harness import Harness, seed
from ticketing.models import Order, Processor, Refund, RefundKind
from ticketing.money import Money
from ticketing.reconciliation import DiscrepancyClass as C
from ticketing.reconciliation_records import (
    BalanceEntry,
    Page,
    ProcessorRefundRecord,
    ProcessorRefundStatus,
    ReconWindow,
    UndeliveredEvent,
)
from ticketing.states import RefundStatus
from ticketing.store.refunds import insert_refund
from ticketing.store.tables import orders
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_contracts import ReconcileInput, ReconcileResult, ReconTiming, reconcile_workflow_id

W_START = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = ReconWindow(start=W_START, end=W_START + timedelta(days=1))
LAG_HOURS = 20 * 24  # as_of = window end + 20 days: pending and manual waits in the window are overdue
S = ProcessorRefundStatus


class FakeSource:
    """The processor's lists, in memory; pages in id order, `rate_limit_every` answers 429 now and then.

    `inline_balance` (as Stripe's expanded refund list): each refund carries its own balance entries;
    otherwise they are only in the balance listing, as a processor that cannot inline them.
    """

    processor = Processor.STRIPE

    def __init__(self, *, inline_balance: bool = True) -> None:
        self.inline_balance = inline_balance
        self.refunds: list[ProcessorRefundRecord] = []
        self.balance: list[BalanceEntry] = []
        self.events: list[UndeliveredEvent] = []
        self.rate_limit_every: int | None = None
        self.calls = 0
        self.refused = 0

    def _tick(self) -> None:
        self.calls += 1
        if self.rate_limit_every and self.calls % self.rate_limit_every == 0:
            self.refused += 1
            raise ProcessorUnavailable("rate limited", code="rate_limit", status=429)

    def _page(self, items: list[Any], window: ReconWindow, cursor: str | None, limit: int) -> Page[Any]:
        self._tick()
        inside = sorted((i for i in items if window.start <= i.created_at < window.end), key=lambda i: i.id)
        start = int(cursor or 0)
        chunk = inside[start : start + limit]
        nxt = start + limit
        return Page(items=chunk, next_cursor=str(nxt) if nxt < len(inside) else None)

    async def refund_page(self, window: ReconWindow, cursor: str | None, limit: int) -> Page[ProcessorRefundRecord]:
        return self._page(self.refunds, window, cursor, limit)

    async def balance_page(
        self, window: ReconWindow, cursor: str | None, limit: int, *, failures_only: bool = False
    ) -> Page[BalanceEntry]:
        return self._page([b for b in self.balance if not failures_only or b.amount > 0], window, cursor, limit)

    async def undelivered_event_page(
        self, window: ReconWindow, cursor: str | None, limit: int
    ) -> Page[UndeliveredEvent]:
        return self._page(self.events, window, cursor, limit)

    async def refunds_for_payment(self, payment_reference: str) -> list[ProcessorRefundRecord]:
        self._tick()
        return [r for r in self.refunds if r.payment_reference == payment_reference]


@dataclass
class World:
    """One test's ledger and processor, and how to make them disagree."""

    app: Harness
    fake: FakeSource
    parked_queue: str
    n: int = 0
    parked: list[str] = field(default_factory=list)

    def _at(self) -> datetime:
        self.n += 1
        return W_START + timedelta(hours=1, seconds=self.n)

    async def order(self, tickets: int = 2) -> Order:
        event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:8]}")
        order = make_order(event, types, tickets=tickets, reference=f"pi_{uuid.uuid4().hex[:12]}")
        await seed(self.app.store, event, types, slots, [order])
        return order

    async def refund(
        self,
        order: Order,
        status: RefundStatus,
        *,
        amount: int = 3500,
        processor_refund_id: str | None = None,
        manual_reference: str | None = None,
        at: datetime | None = None,
        updated_at: datetime | None = None,
        move_totals: bool = True,
    ) -> Refund:
        """A ledger refund row, with the order's totals moved as the ledger would have."""
        at = at or self._at()
        rid = f"rf_{uuid.uuid4().hex[:12]}"
        refund = Refund(
            id=rid, order_code=order.code, kind=RefundKind.AMOUNT, amount=Money(amount=amount, currency="EUR"),
            ticket_ids=[], fees_kept=Money(amount=0, currency="EUR"), reason="test", status=status,
            processor=order.payment.processor, workflow_id=f"refund/{order.code}/{rid}",
            processor_refund_id=processor_refund_id, manual_reference=manual_reference, requested_by="fin",
            created_at=at, updated_at=updated_at or at,
        )
        async with self.app.store.transaction() as conn:
            await insert_refund(conn, refund)
            if status is RefundStatus.SUCCEEDED:
                col = orders.c.refunded_total
            elif status in (RefundStatus.FAILED, RefundStatus.REJECTED):
                col = None
            else:
                col = orders.c.pending_refund_total
            if col is not None and move_totals:
                await conn.execute(
                    orders.update().where(orders.c.code == order.code).values({col: col + amount})
                )
        return refund

    def processor_refund(
        self,
        order: Order | None,
        refund: Refund | None,
        status: ProcessorRefundStatus = S.SUCCEEDED,
        *,
        amount: int = 3500,
        currency: str = "EUR",
        pid: str | None = None,
        ours: bool = True,
        balance: bool = True,
        at: datetime | None = None,
    ) -> ProcessorRefundRecord:
        at = at or self._at()
        record = ProcessorRefundRecord(
            processor=Processor.STRIPE,
            id=pid or f"re_{uuid.uuid4().hex[:14]}",
            status=status,
            amount=amount,
            currency=currency,
            created_at=at,
            payment_reference=order.payment.reference if order else f"pi_other_{uuid.uuid4().hex[:8]}",
            failure_reason="expired_or_canceled_card" if status is S.FAILED else None,
            pending_reason="charge_pending" if status is S.PENDING else None,
            ledger_refund_id=refund.id if refund and ours else None,
            idempotency_key=refund.idempotency_key if refund and ours else None,
            order_code=refund.order_code if refund and ours else None,
            workflow_id=refund.workflow_id if refund and ours else None,
        )
        entries = []
        if balance and status in (S.SUCCEEDED, S.FAILED):
            entries.append(
                BalanceEntry(
                    processor=Processor.STRIPE, id=f"txn_{uuid.uuid4().hex[:14]}", type="refund",
                    reporting_category="refund", source=record.id, amount=-amount, currency=currency, created_at=at,
                )
            )
        if balance and status is S.FAILED:  # the money back, as the processor records a failure
            entries.append(
                BalanceEntry(
                    processor=Processor.STRIPE, id=f"txn_{uuid.uuid4().hex[:14]}", type="refund_failure",
                    reporting_category="refund_failure", source=record.id, amount=amount, currency=currency,
                    created_at=at,
                )
            )
        if self.fake.inline_balance:
            record.balance_entries = entries
        else:
            self.fake.balance += entries
        self.fake.refunds.append(record)
        return record

    async def park(self, workflow_id: str) -> None:
        """A run that is open (nobody polls its queue): the refund's workflow is alive."""
        await self.app.client.start_workflow("Parked", id=workflow_id, task_queue=self.parked_queue)
        self.parked.append(workflow_id)

    async def clean(self, count: int = 1) -> None:
        """Refunds where both sides agree."""
        for _ in range(count):
            order = await self.order()
            pid = f"re_{uuid.uuid4().hex[:14]}"
            refund = await self.refund(order, RefundStatus.SUCCEEDED, processor_refund_id=pid)
            self.processor_refund(order, refund, pid=pid)


Expected = set[tuple[C, str]]
Injection = Callable[[World], Awaitable[Expected]]


async def missing_at_processor(w: World) -> Expected:
    order = await w.order()
    refund = await w.refund(order, RefundStatus.SUCCEEDED, processor_refund_id="re_vanished")
    return {(C.MISSING_AT_PROCESSOR, refund.id)}


async def missing_in_ledger(w: World) -> Expected:
    order = await w.order()
    p = w.processor_refund(order, None, ours=False)  # a Dashboard refund on our payment
    return {(C.MISSING_IN_LEDGER, p.id)}


async def foreign(w: World) -> Expected:
    p = w.processor_refund(None, None, ours=False)
    return {(C.FOREIGN, p.id)}


async def amount_mismatch(w: World) -> Expected:
    order = await w.order()
    pid = f"re_{uuid.uuid4().hex[:14]}"
    refund = await w.refund(order, RefundStatus.SUCCEEDED, processor_refund_id=pid, amount=3500)
    w.processor_refund(order, refund, pid=pid, amount=3000)
    return {(C.AMOUNT_MISMATCH, refund.id)}


async def currency_mismatch(w: World) -> Expected:
    order = await w.order()
    pid = f"re_{uuid.uuid4().hex[:14]}"
    refund = await w.refund(order, RefundStatus.SUCCEEDED, processor_refund_id=pid)
    w.processor_refund(order, refund, pid=pid, currency="USD")
    return {(C.CURRENCY_MISMATCH, refund.id)}


async def late_failure(w: World) -> Expected:
    """The lost late failure: the ledger says refunded, the processor failed it silently."""
    order = await w.order()
    pid = f"re_{uuid.uuid4().hex[:14]}"
    refund = await w.refund(order, RefundStatus.SUCCEEDED, processor_refund_id=pid)
    w.processor_refund(order, refund, S.FAILED, pid=pid)
    return {(C.STATUS_MISMATCH, refund.id)}


async def error_but_paid(w: World) -> Expected:
    """Refund-error without a processor refund of its own (the create's answer never came), yet one paid under
    its key: finance's (a retry adopts it); the ledger cannot tell it is this refund's money by itself."""
    order = await w.order()
    refund = await w.refund(order, RefundStatus.FAILED)
    w.processor_refund(order, refund, S.SUCCEEDED)
    return {(C.STATUS_MISMATCH, refund.id)}


async def error_then_paid(w: World) -> Expected:
    """Refund-error (its confirmation window ran out) whose own processor refund paid later: healed by the
    follow-up run (`start-late-answer`), which makes it refunded."""
    order = await w.order()
    pid = f"re_{uuid.uuid4().hex[:14]}"
    refund = await w.refund(order, RefundStatus.FAILED, processor_refund_id=pid)
    w.processor_refund(order, refund, S.SUCCEEDED, pid=pid)
    return {(C.STATUS_MISMATCH, refund.id)}


async def pending_overdue(w: World) -> Expected:
    order = await w.order()
    pid = f"re_{uuid.uuid4().hex[:14]}"
    refund = await w.refund(order, RefundStatus.CONFIRMING, processor_refund_id=pid)
    await w.park(refund.workflow_id)
    w.processor_refund(order, refund, S.PENDING, pid=pid)
    return {(C.PENDING_OVERDUE, refund.id)}


async def duplicate(w: World) -> Expected:
    order = await w.order()
    pid = f"re_{uuid.uuid4().hex[:14]}"
    refund = await w.refund(order, RefundStatus.SUCCEEDED, processor_refund_id=pid)
    w.processor_refund(order, refund, pid=pid)
    w.processor_refund(order, refund)  # the same key again, after Stripe forgot it
    return {(C.DUPLICATE_AT_PROCESSOR, refund.id)}


async def over_refunded(w: World) -> Expected:
    """Each refund agrees with its processor refund; together they pay back more than was paid.

    (The order's totals could not hold this, so only the refund rows are written: a lost order write.)
    """
    order = await w.order()  # 2 x 35.00 + a 2.50 service fee kept: 70.00 refundable in all
    expected: Expected = set()
    for amount in (3500, 4000):
        pid = f"re_{uuid.uuid4().hex[:14]}"
        refund = await w.refund(
            order, RefundStatus.SUCCEEDED, processor_refund_id=pid, amount=amount, move_totals=False
        )
        w.processor_refund(order, refund, pid=pid, amount=amount)
    expected.add((C.OVER_REFUNDED, order.payment.reference or ""))
    return expected


async def double_settlement(w: World) -> Expected:
    order = await w.order()
    refund = await w.refund(order, RefundStatus.SUCCEEDED, manual_reference="BANK-77")
    w.processor_refund(order, refund)  # the processor paid it too, under our key
    return {(C.DOUBLE_SETTLEMENT, refund.id)}


async def money_movement(w: World) -> Expected:
    order = await w.order()
    pid = f"re_{uuid.uuid4().hex[:14]}"
    refund = await w.refund(order, RefundStatus.SUCCEEDED, processor_refund_id=pid)
    p = w.processor_refund(order, refund, pid=pid, balance=False)
    return {(C.MONEY_MOVEMENT, p.id)}


async def missed_webhook(w: World) -> Expected:
    order = await w.order()
    pid = f"re_{uuid.uuid4().hex[:14]}"
    refund = await w.refund(order, RefundStatus.CONFIRMING, processor_refund_id=pid)
    await w.park(refund.workflow_id)
    p = w.processor_refund(order, refund, S.SUCCEEDED, pid=pid)
    event = UndeliveredEvent(
        processor=Processor.STRIPE, id=f"evt_{uuid.uuid4().hex[:14]}", type="refund.updated",
        created_at=p.created_at, processor_refund_id=p.id,
    )
    w.fake.events.append(event)
    return {(C.MISSED_WEBHOOK, event.id)}


async def orphaned(w: World) -> Expected:
    order = await w.order()
    # Waiting for finance since recently (not stale), and no Refund run anywhere.
    refund = await w.refund(order, RefundStatus.AWAITING_MANUAL, updated_at=W_START + timedelta(days=19))
    return {(C.ORPHANED, refund.id)}


async def stale_manual(w: World) -> Expected:
    order = await w.order()
    refund = await w.refund(order, RefundStatus.AWAITING_MANUAL)
    await w.park(refund.workflow_id)
    return {(C.STALE_MANUAL, refund.id)}


INJECTIONS: dict[str, Injection] = {
    "missing-at-processor": missing_at_processor,
    "missing-in-ledger": missing_in_ledger,
    "foreign": foreign,
    "amount-mismatch": amount_mismatch,
    "currency-mismatch": currency_mismatch,
    "status-mismatch-late-failure": late_failure,
    "status-mismatch-error-but-paid": error_but_paid,
    "status-mismatch-error-then-paid": error_then_paid,
    "pending-overdue": pending_overdue,
    "duplicate-at-processor": duplicate,
    "over-refunded": over_refunded,
    "double-settlement": double_settlement,
    "money-movement": money_movement,
    "missed-webhook": missed_webhook,
    "orphaned": orphaned,
    "stale-manual": stale_manual,
}


FAST = ReconTiming(read_rate_per_second=2000.0, page_size=50, pages_per_activity=4, classify_page=200)


async def reconcile(
    client: Client, prefix: str, *, dry_run: bool = False, timing: ReconTiming = FAST, window: ReconWindow = WINDOW
) -> ReconcileResult:
    return await client.execute_workflow(
        ReconcileWorkflow.run,
        ReconcileInput(
            processor=Processor.STRIPE, window=window, settlement_lag_hours=LAG_HOURS, dry_run=dry_run, timing=timing
        ),
        # The store's run row is `reconcile/stripe/{window}` whatever the workflow id; the test's prefix keeps
        # tests that share the dev server (and a window) from meeting a run another test left behind.
        id=prefix + reconcile_workflow_id("stripe", window.label),
        task_queue=f"{prefix}orders",
    )


async def count_rows(app: Harness, table: sa.Table) -> int:
    async with app.store.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def stray_credit(w: World, amount: int = 3500) -> tuple[ProcessorRefundRecord, BalanceEntry]:
    """A refund where both sides agree, and money credited back on it that the refund does not show
    (the stand-in's `stray_balance_transaction`): only the window's totals can see it."""
    order = await w.order()
    pid = f"re_{uuid.uuid4().hex[:14]}"
    refund = await w.refund(order, RefundStatus.SUCCEEDED, processor_refund_id=pid)
    record = w.processor_refund(order, refund, pid=pid)
    entry = BalanceEntry(
        processor=Processor.STRIPE,
        id=f"txn_stray_{uuid.uuid4().hex[:10]}",
        type="refund_failure",
        reporting_category="refund_failure",
        source=pid,
        amount=amount,
        currency="EUR",
        created_at=w._at(),
    )
    w.fake.balance.append(entry)  # listed only, never inline: the refund does not show it
    return record, entry


async def late_failure_of_an_earlier_window(w: World) -> tuple[Refund, UndeliveredEvent]:
    """A refund made (and reconciled clean) three days before the window, returned by the bank inside it,
    whose `refund.failed` webhook never arrived: in the window there is only that undelivered event and
    the failure's credit; the refund itself and its debit are in their own, earlier window."""
    order = await w.order()
    pid = f"re_{uuid.uuid4().hex[:14]}"
    made = W_START - timedelta(days=3)
    failed = W_START + timedelta(hours=5)
    refund = await w.refund(order, RefundStatus.SUCCEEDED, processor_refund_id=pid, at=made)
    record = w.processor_refund(order, refund, S.FAILED, pid=pid, at=made, balance=False)
    entries = [
        BalanceEntry(processor=Processor.STRIPE, id=f"txn_{uuid.uuid4().hex[:14]}", type="refund",
                     reporting_category="refund", source=pid, amount=-3500, currency="EUR", created_at=made),
        BalanceEntry(processor=Processor.STRIPE, id=f"txn_{uuid.uuid4().hex[:14]}", type="refund_failure",
                     reporting_category="refund_failure", source=pid, amount=3500, currency="EUR", created_at=failed),
    ]  # fmt: skip
    if w.fake.inline_balance:
        record.balance_entries = entries
    else:
        w.fake.balance += entries
    event = UndeliveredEvent(
        processor=Processor.STRIPE, id=f"evt_{uuid.uuid4().hex[:14]}", type="refund.failed", created_at=failed,
        processor_refund_id=pid,
    )
    w.fake.events.append(event)
    return refund, event
