"""`ticketops audit --since/--until` on the processor refund's clock, as reconciliation counts a window.

The processor is faked at the network boundary (reconciliation's in-memory `FakeSource`, its
refunds' balance entries inline as Stripe's expanded list, or only in the balance listing); the
ledger is written through the real store, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from backoffice.cli import audit_cmds
from runtime.settings import Settings
from tests.builders import make_event, make_order
from tests.e2e.reconcile_support import WINDOW, FakeSource
from tests.harness import seed
from ticketing.audit import Check
from ticketing.models import Order, Processor, Refund, RefundKind
from ticketing.money import Money
from ticketing.reconciliation_records import (
    BalanceEntry,
    ProcessorRefundRecord,
    ProcessorRefundStatus,
    ReconWindow,
)
from ticketing.states import RefundStatus
from ticketing.store.engine import Store
from ticketing.store.refunds import insert_refund

SECOND = timedelta(seconds=1)
BEFORE = ReconWindow(start=WINDOW.start - timedelta(days=1), end=WINDOW.start)
AFTER = ReconWindow(start=WINDOW.end, end=WINDOW.end + timedelta(days=1))


class Ledger:
    """Orders and ledger refunds in the store, and their processor refunds in the fake."""

    def __init__(self, store: Store, fake: FakeSource) -> None:
        self.store, self.fake = store, fake

    async def order(self) -> Order:
        event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:8]}")
        order = make_order(event, types, reference=f"pi_{uuid.uuid4().hex[:12]}")
        await seed(self.store, event, types, slots, [order])
        return order

    async def refund(
        self, order: Order, status: RefundStatus, *, pid: str | None, at: datetime, amount: int = 3500
    ) -> Refund:
        rid = f"rf_{uuid.uuid4().hex[:12]}"
        refund = Refund(
            id=rid,
            order_code=order.code,
            kind=RefundKind.AMOUNT,
            amount=Money(amount=amount, currency="EUR"),
            ticket_ids=[],
            fees_kept=Money(amount=0, currency="EUR"),
            reason="audit window",
            status=status,
            processor=Processor.STRIPE,
            workflow_id=f"refund/{order.code}/{rid}",
            processor_refund_id=pid,
            requested_by="fin",
            created_at=at,
            updated_at=at,
        )
        async with self.store.transaction() as conn:
            await insert_refund(conn, refund)
        return refund

    def at_processor(
        self,
        order: Order,
        refund: Refund | None,
        *,
        pid: str,
        at: datetime,
        failed_at: datetime | None = None,
        amount: int = 3500,
    ) -> None:
        """A processor refund with its debit; `failed_at`: it failed then, and the money came back."""
        record = ProcessorRefundRecord(
            processor=Processor.STRIPE,
            id=pid,
            status=ProcessorRefundStatus.FAILED if failed_at else ProcessorRefundStatus.SUCCEEDED,
            amount=amount,
            currency="EUR",
            created_at=at,
            payment_reference=order.payment.reference,
            ledger_refund_id=refund.id if refund else None,
            idempotency_key=refund.idempotency_key if refund else None,
            order_code=order.code if refund else None,
        )
        entries = [_entry(pid, "refund", -amount, at)]
        if failed_at is not None:
            entries.append(_entry(pid, "refund_failure", amount, failed_at))
        if self.fake.inline_balance:
            record.balance_entries = entries
        else:
            self.fake.balance += entries
        self.fake.refunds.append(record)

    async def paired(self, *, ledger_at: datetime, processor_at: datetime) -> Refund:
        order = await self.order()
        pid = f"re_{uuid.uuid4().hex[:14]}"
        refund = await self.refund(order, RefundStatus.SUCCEEDED, pid=pid, at=ledger_at)
        self.at_processor(order, refund, pid=pid, at=processor_at)
        return refund


def _entry(source: str, kind: str, amount: int, at: datetime) -> BalanceEntry:
    return BalanceEntry(
        processor=Processor.STRIPE,
        id=f"txn_{uuid.uuid4().hex[:14]}",
        type=kind,
        reporting_category=kind,
        source=source,
        amount=amount,
        currency="EUR",
        created_at=at,
    )


@pytest.fixture(params=[True, False], ids=["inline", "listed"])
def ledger(any_store: Store, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    fake = FakeSource(inline_balance=request.param)
    monkeypatch.setattr(
        audit_cmds, "reconciliation_source", lambda _settings, p: fake if p is Processor.STRIPE else None
    )
    return Ledger(any_store, fake)


async def _totals(ledger: Ledger, window: ReconWindow) -> list[dict[str, object]]:
    found = await audit_cmds.processor_findings(Settings(database_url=ledger.store.url), window)
    assert all(f.check is Check.PROCESSOR_TOTALS for f in found)
    return [f.detail for f in found]


async def test_a_refund_made_before_the_end_and_marked_after_it_counts_in_one_window_on_both_sides(
    ledger: Ledger,
) -> None:
    """The processor made it a second before the window's end, the ledger wrote it a second after:
    both sides count it in the window (the processor refund's clock), and the next window has neither."""
    await ledger.paired(ledger_at=WINDOW.start + timedelta(hours=1), processor_at=WINDOW.start + timedelta(hours=1))
    await ledger.paired(ledger_at=WINDOW.end + SECOND, processor_at=WINDOW.end - SECOND)
    assert await _totals(ledger, WINDOW) == []
    assert await _totals(ledger, AFTER) == []


async def test_refunds_across_either_boundary_agree_in_every_window(ledger: Ledger) -> None:
    """As reconciliation's boundary test: a ledger refund whose processor refund was made in another
    window counts there (the audit asks the processor when it was made), never in its own."""
    await ledger.paired(ledger_at=WINDOW.start - SECOND, processor_at=WINDOW.start + SECOND)
    await ledger.paired(ledger_at=WINDOW.end - SECOND, processor_at=WINDOW.end + SECOND)
    await ledger.paired(ledger_at=WINDOW.end + SECOND, processor_at=WINDOW.end - SECOND)
    for window in (BEFORE, WINDOW, AFTER):
        assert await _totals(ledger, window) == [], window.label


async def test_a_refund_that_failed_after_the_window_counts_with_its_refund(ledger: Ledger) -> None:
    """The money came back days later: the debit and the credit both count in the refund's window
    (nothing moved; the ledger's failed refund moved nothing either), and the later window has neither.

    A processor that only lists balance entries by their own time (not inline with the refund, as
    Stripe's expanded list does) shows the window the debit alone: reconciliation reads it the same way.
    """
    order = await ledger.order()
    made = WINDOW.start + timedelta(hours=2)
    refund = await ledger.refund(order, RefundStatus.FAILED, pid="re_late_fail", at=made)
    ledger.at_processor(order, refund, pid="re_late_fail", at=made, failed_at=AFTER.start + timedelta(hours=3))
    unseen_credit = [{"window": WINDOW.label, "processor": 3_500, "ledger": 0, "difference": 3_500}]
    assert await _totals(ledger, WINDOW) == ([] if ledger.fake.inline_balance else unseen_credit)
    assert await _totals(ledger, AFTER) == []


async def test_money_neither_side_explains_is_still_reported(ledger: Ledger) -> None:
    """The unhappy paths stay findings: a ledger refund the processor never made counts on the ledger's
    clock, and a processor refund the ledger never wrote (a Dashboard refund) on the processor's."""
    await ledger.paired(ledger_at=WINDOW.start + SECOND, processor_at=WINDOW.start + SECOND)
    order = await ledger.order()
    await ledger.refund(order, RefundStatus.SUCCEEDED, pid="re_vanished", at=WINDOW.end - SECOND, amount=700)
    assert await _totals(ledger, WINDOW) == [
        {"window": WINDOW.label, "processor": 3_500, "ledger": 4_200, "difference": -700}
    ]
    dashboard = await ledger.order()
    ledger.at_processor(dashboard, None, pid="re_dashboard", at=AFTER.start + SECOND, amount=900)
    assert await _totals(ledger, AFTER) == [{"window": AFTER.label, "processor": 900, "ledger": 0, "difference": 900}]
