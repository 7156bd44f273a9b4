"""A window's totals per currency: what the refund items explain is not raised again; the rest is one item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ticketing.audit import compare_totals
from ticketing.reconciliation import DiscrepancyClass, Severity, SuggestedAction
from ticketing.reconciliation.totals import involved_processor_refunds, totals_key, window_totals_findings
from ticketing.reconciliation_records import ReconWindow

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
