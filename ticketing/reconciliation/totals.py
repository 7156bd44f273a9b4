"""A window's money per currency: does what the processor moved match what the ledger refunded?

Both totals are counted on one clock, the processor refund's `created` time: a processor
refund counts in the window that lists it, with every balance entry it has (its debit and, once
it failed, the credit), and a ledger refund counts in the window of its processor refund
(in the ledger's own window only when the processor has no refund for it). A refund made
at the processor a second before the window's end and marked refunded a second after it is
then in one window on both sides, so a clean window always agrees.

A difference is first explained by the refunds this run already raised items about (their
share of each side); what is left is a movement of money no refund accounts for, raised as
one `money-movement` item per currency and window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ticketing.reconciliation.items import DiscrepancyClass, Severity, SuggestedAction
from ticketing.reconciliation.models import Finding
from ticketing.reconciliation_records import BalanceEntry, ProcessorRefundRecord, ReconWindow

# Lists of processor refund ids an item's processor evidence carries besides its own `id`.
_RELATED = ("paying_refunds", "refunds")


def totals_key(window: ReconWindow, currency: str) -> str:
    """Stable per processor (in the item id), window and currency: a re-run finds the same item."""
    return f"totals:{window.label}:{currency}"


def is_totals_key(key: str) -> bool:
    return key.startswith("totals:")


def involved_processor_refunds(processor_refund_id: str | None, processor_side: Mapping[str, Any] | None) -> set[str]:
    """The processor refunds an item is about: its own, and those it names (a duplicate's, a payment's)."""
    ids = {processor_refund_id} if processor_refund_id else set()
    for field in _RELATED:
        ids |= {str(i) for i in (processor_side or {}).get(field) or ()}
    return ids


def counted_elsewhere(window: ReconWindow, current: ProcessorRefundRecord | None) -> bool:
    """A ledger refund the window's processor listing does not claim, whose current processor refund
    the processor made outside the window: its money counts in that refund's window, not this one.
    (No processor refund at all: it counts on the ledger's own clock, and the difference shows.)"""
    return current is not None and not window.start <= current.created_at < window.end


def refund_entries(refunds: Iterable[ProcessorRefundRecord], listed: Iterable[BalanceEntry]) -> list[BalanceEntry]:
    """The processor's side of a window: every balance entry of the refunds it made in the window, each
    once, whenever the entry was made (a failure's credit days later counts with its refund) — their own
    (`balance_entries`) and the listed ones whose source is one of them. A listed entry of another
    window's refund counts in that refund's window."""
    entries: dict[str, BalanceEntry] = {}
    ids = set()
    for refund in refunds:
        ids.add(refund.id)
        entries |= {e.id: e for e in refund.balance_entries or ()}
    for entry in listed:
        if entry.source in ids:
            entries.setdefault(entry.id, entry)
    return list(entries.values())


def add_into(into: dict[str, int], amounts: Iterable[tuple[str, int]]) -> dict[str, int]:
    for currency, amount in amounts:
        into[currency] = into.get(currency, 0) + amount
    return into


def window_totals_findings(
    window: ReconWindow, totals: Mapping[str, Mapping[str, int]], explained: Mapping[str, int]
) -> list[Finding]:
    """One item per currency whose difference (processor minus ledger) the run's items do not explain."""
    found = []
    for currency, t in sorted(totals.items()):
        accounted = explained.get(currency, 0)
        unexplained = t["difference"] - accounted
        if not unexplained:
            continue
        figures = {
            "window": window.label,
            "currency": currency,
            "processor_total": t["processor"],
            "ledger_total": t["ledger"],
            "difference": t["difference"],
            "explained": accounted,
            "unexplained": unexplained,
        }
        found.append(
            Finding(
                cls=DiscrepancyClass.MONEY_MOVEMENT,
                key=totals_key(window, currency),
                action=SuggestedAction.INVESTIGATE,
                level=Severity.HIGH,
                ledger={"window": window.label, "currency": currency, "refunded": t["ledger"]},
                processor=figures | {"suggested_action": _advice(unexplained)},
                amount=unexplained,
                currency=currency,
            )
        )
    return found


def _advice(unexplained: int) -> str:
    if unexplained > 0:
        return (
            "The processor's balance paid back more than the ledger refunded, beyond every refund item: "
            "look for balance transactions (refund, refund_failure) the window's refunds do not account for"
        )
    return (
        "The ledger refunded more than the processor's balance paid back, beyond every refund item: "
        "look for refunds whose balance transactions are missing, short or credited back"
    )
