"""A reconciliation run's report: one CSV row per item and a JSON summary, as finance reads them.

Pure functions over plain rows, so the report activity, the API's download and
the tests agree byte for byte, and a re-run of the same window (same items, same
totals) writes the same report. Rows carry ids, amounts and statuses only: no
buyer names or addresses, which finance looks up in the backoffice by order code.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from ticketing.money import Money

CSV_COLUMNS = (
    "item_id",
    "class",
    "severity",
    "state",
    "healed",
    "order_code",
    "ledger_refund_id",
    "processor_refund_id",
    "payment_reference",
    "ledger_amount",
    "ledger_currency",
    "ledger_status",
    "processor_amount",
    "processor_currency",
    "processor_status",
    "suggested_action",
    "detail",
)


class ReportLine(BaseModel):
    """One item as the report shows it; amounts in minor units, either side may be absent."""

    item_id: str
    kind: str  # the discrepancy class
    severity: str
    state: str
    healed: bool = False  # the run took the item's healing step; the next run's re-check resolves it
    order_code: str | None = None
    ledger_refund_id: str | None = None
    processor_refund_id: str | None = None
    payment_reference: str | None = None
    ledger_amount: int | None = None
    ledger_currency: str | None = None
    ledger_status: str | None = None
    processor_amount: int | None = None
    processor_currency: str | None = None
    processor_status: str | None = None
    suggested_action: str = ""
    detail: str = ""


class CurrencyTotal(BaseModel):
    """What each side moved in one currency over the window (refunds out, failures back), minor units."""

    currency: str
    processor: int
    ledger: int

    @property
    def difference(self) -> int:
        return self.processor - self.ledger


class ReportHeader(BaseModel):
    run_id: str
    processor: str
    window_start: datetime
    window_end: datetime
    finished_at: datetime | None = None
    processor_refunds: int = 0
    healed: int = 0


def _display(amount: int | None, currency: str | None) -> str:
    """`39.00` in the currency's own decimals; empty when that side has nothing."""
    if amount is None or not currency:
        return ""
    return Money(amount=amount, currency=currency).display().split(" ", 1)[-1]


def report_csv(lines: list[ReportLine]) -> bytes:
    """Most severe first, then by class and keys: a stable order, so equal runs give equal files."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in sorted(lines, key=_order):
        writer.writerow(
            (
                line.item_id,
                line.kind,
                line.severity,
                line.state,
                "yes" if line.healed else "",
                line.order_code or "",
                line.ledger_refund_id or "",
                line.processor_refund_id or "",
                line.payment_reference or "",
                _display(line.ledger_amount, line.ledger_currency),
                line.ledger_currency or "",
                line.ledger_status or "",
                _display(line.processor_amount, line.processor_currency),
                line.processor_currency or "",
                line.processor_status or "",
                line.suggested_action,
                line.detail,
            )
        )
    return buffer.getvalue().encode()


SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def _order(line: ReportLine) -> tuple[Any, ...]:
    return (
        SEVERITY_RANK.get(line.severity, 9),
        line.kind,
        line.order_code or "",
        line.ledger_refund_id or "",
        line.processor_refund_id or "",
        line.item_id,
    )


def needs_finance(line: ReportLine) -> bool:
    """Open and not healed by the run: what finance is emailed about and works in the queue."""
    return line.state == "open" and not line.healed


def report_summary(header: ReportHeader, lines: list[ReportLine], totals: list[CurrencyTotal]) -> dict[str, Any]:
    """The JSON summary: totals per currency with their difference, counts per class, severity and state."""
    return {
        "run_id": header.run_id,
        "processor": header.processor,
        "window": {"start": header.window_start.isoformat(), "end": header.window_end.isoformat()},
        "finished_at": header.finished_at.isoformat() if header.finished_at else None,
        "processor_refunds": header.processor_refunds,
        "healed": header.healed,
        "totals": [
            {
                "currency": t.currency,
                "processor": t.processor,
                "ledger": t.ledger,
                "difference": t.difference,
                "processor_display": Money(amount=t.processor, currency=t.currency).display(),
                "ledger_display": Money(amount=t.ledger, currency=t.currency).display(),
                "difference_display": Money(amount=t.difference, currency=t.currency).display(),
            }
            for t in sorted(totals, key=lambda t: t.currency)
        ],
        "items": len(lines),
        "open_items": sum(1 for line in lines if line.state == "open"),
        "for_finance": sum(1 for line in lines if needs_finance(line)),
        "by_class": dict(sorted(Counter(line.kind for line in lines).items())),
        "by_severity": dict(sorted(Counter(line.severity for line in lines).items())),
        "by_state": dict(sorted(Counter(line.state for line in lines).items())),
    }


def summary_json(summary: dict[str, Any]) -> bytes:
    return (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode()


def report_keys(run_id: str) -> tuple[str, str]:
    """Blob keys of a run's CSV and JSON; the run id is made of ids, times and `/`-free text."""
    safe = run_id.replace("/", "_").replace(":", "")
    return f"reconciliation/{safe}.csv", f"reconciliation/{safe}.json"
