"""A window's totals per currency: what the refund items explain is not raised again; the rest is one item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ticketing.audit import compare_totals
from ticketing.models import Processor
from ticketing.reconciliation import DiscrepancyClass, Severity, SuggestedAction
from ticketing.reconciliation.totals import (
    counted_elsewhere,
    involved_processor_refunds,
    refund_entries,
    totals_key,
    window_totals_findings,
)
from ticketing.reconciliation_records import BalanceEntry, ProcessorRefundRecord, ProcessorRefundStatus, ReconWindow

START = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = ReconWindow(start=START, end=START + timedelta(days=1))


def test_agreeing_or_fully_explained_currencies_raise_nothing() -> None:
    totals = compare_totals({"EUR": 10_000, "USD": 7_000}, {"EUR": 10_000, "USD": 3_500})
    assert window_totals_findings(WINDOW, totals, {"USD": 3_500}) == []


def test_each_currency_with_an_unexplained_rest_is_one_high_item() -> None:
    totals = compare_totals({"EUR": 9_000, "GBP": 500}, {"EUR": 10_000})
    found = window_totals_findings(WINDOW, totals, {"EUR": -400})
    assert [(f.cls, f.key, f.severity, f.action, f.amount, f.currency) for f in found] == [
        (DiscrepancyClass.MONEY_MOVEMENT, totals_key(WINDOW, "EUR"), Severity.HIGH, SuggestedAction.INVESTIGATE,
         -600, "EUR"),
        (DiscrepancyClass.MONEY_MOVEMENT, totals_key(WINDOW, "GBP"), Severity.HIGH, SuggestedAction.INVESTIGATE,
         500, "GBP"),
    ]  # fmt: skip
    eur = found[0].processor or {}
    assert {k: eur[k] for k in ("processor_total", "ledger_total", "difference", "explained", "unexplained")} == {
        "processor_total": 9_000, "ledger_total": 10_000, "difference": -1_000, "explained": -400,
        "unexplained": -600,
    }  # fmt: skip
    assert eur["suggested_action"] and found[0].refund_id is None
    # The same window and currency is the same key, whatever the figures: a re-run finds the same item.
    again = window_totals_findings(WINDOW, compare_totals({"EUR": 1}, {}), {})
    assert again[0].key == found[0].key and "severity" in again[0].model_dump()


def test_an_item_involves_its_refund_and_those_it_names() -> None:
    assert involved_processor_refunds("re_1", {"paying_refunds": ["re_1", "re_2"]}) == {"re_1", "re_2"}
    assert involved_processor_refunds(None, {"refunds": ["re_3"]}) == {"re_3"}
    assert involved_processor_refunds(None, None) == set()


def _made(pid: str, at: datetime, entries: list[BalanceEntry] | None = None) -> ProcessorRefundRecord:
    return ProcessorRefundRecord(
        processor=Processor.STRIPE, id=pid, status=ProcessorRefundStatus.SUCCEEDED, amount=3_500, currency="EUR",
        created_at=at, balance_entries=entries,
    )


def _entry(eid: str, source: str, amount: int, at: datetime) -> BalanceEntry:
    return BalanceEntry(
        processor=Processor.STRIPE, id=eid, type="refund" if amount < 0 else "refund_failure",
        reporting_category="refund", source=source, amount=amount, currency="EUR", created_at=at,
    )


def test_a_ledger_refund_counts_elsewhere_only_when_its_processor_refund_was_made_outside_the_window() -> None:
    second = timedelta(seconds=1)
    assert counted_elsewhere(WINDOW, _made("re_1", WINDOW.end))  # the end is the next window's
    assert counted_elsewhere(WINDOW, _made("re_1", WINDOW.start - second))
    assert not counted_elsewhere(WINDOW, _made("re_1", WINDOW.start))
    assert not counted_elsewhere(WINDOW, _made("re_1", WINDOW.end - second))
    assert not counted_elsewhere(WINDOW, None)  # the processor has none: the ledger's own clock


def test_a_windows_entries_are_its_refunds_own_each_once_whenever_made() -> None:
    later = WINDOW.end + timedelta(days=3)
    debit, credit = _entry("txn_d", "re_1", -3_500, START), _entry("txn_c", "re_1", 3_500, later)
    other = _entry("txn_o", "re_old", 3_500, START)  # an older window's refund failed in this one
    inline = refund_entries([_made("re_1", START, [debit, credit])], [credit, other])
    listed = refund_entries([_made("re_1", START)], [debit, credit, other])
    assert [e.id for e in inline] == [e.id for e in listed] == ["txn_d", "txn_c"]
    assert refund_entries([_made("re_2", START, [])], [other]) == []
