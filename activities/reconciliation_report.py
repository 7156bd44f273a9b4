"""A reconciliation run's report (CSV + JSON summary in blob storage) and finance's email about it.

The `Reconcile` workflow calls `write_reconciliation_report` when a run has
classified and healed (orders queue: store and blobs), then
`send_reconciliation_email` (email queue) when items are open. Both take the run
id only. The report is a pure function of the run row and its items, so a
retried activity, or a re-run of the same window that finds the same, writes the
same bytes; the email goes once per run pass (delivery log, deterministic Message-ID).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel
from temporalio import activity

from activities.contracts import DeliveryOutcome
from activities.delivery import DeliveryActivities
from activities.deps import Deps
from activities.errors import domain_errors
from documents.email_templates import render_email
from email_providers.base import OutgoingEmail
from ticketing.money import Money
from ticketing.reconciliation.models import ReconItem, ReconRun
from ticketing.reconciliation_records import ReconWindow
from ticketing.reconciliation_report import (
    CurrencyTotal,
    ReportHeader,
    ReportLine,
    needs_finance,
    report_csv,
    report_keys,
    report_summary,
    summary_json,
)
from ticketing.store.reconciliation import get_run, list_items, set_report_uris

log = structlog.get_logger(__name__)
PAGE = 1000


class ReconReportRequest(BaseModel):
    run_id: str


class ReconReportOutcome(BaseModel):
    run_id: str
    csv_uri: str
    json_uri: str
    items: int
    open_items: int
    for_finance: int = 0  # open and not healed: the email goes when there are any


def _side(evidence: dict[str, Any] | None, key: str) -> Any:
    return (evidence or {}).get(key)


def report_line(item: ReconItem) -> ReportLine:
    """An item as the report shows it: its keys and each side's amount, currency and status."""
    ledger, processor = item.ledger or {}, item.processor_side or {}
    return ReportLine(
        item_id=item.id,
        kind=item.cls.value,
        severity=item.severity.label,
        state=item.state.value,
        healed=item.healed_at is not None,
        order_code=item.order_code,
        ledger_refund_id=item.refund_id,
        processor_refund_id=item.processor_refund_id,
        payment_reference=_side(processor, "payment_reference") or _side(ledger, "payment_reference"),
        ledger_amount=_side(ledger, "amount"),
        ledger_currency=_side(ledger, "currency"),
        ledger_status=_side(ledger, "status"),
        processor_amount=_side(processor, "amount"),
        processor_currency=_side(processor, "currency"),
        processor_status=_side(processor, "status"),
        suggested_action=item.suggested_action.value,
        detail=str(_side(processor, "failure_reason") or _side(processor, "pending_reason") or item.reason or ""),
    )


def currency_totals(run: ReconRun) -> list[CurrencyTotal]:
    return [
        CurrencyTotal(currency=currency, processor=int(t.get("processor", 0)), ledger=int(t.get("ledger", 0)))
        for currency, t in run.totals.items()
    ]


def window_label(run: ReconRun) -> str:
    return ReconWindow(start=run.window_start, end=run.window_end).label


async def run_report(deps: Deps, run_id: str) -> tuple[ReconRun, list[ReportLine]]:
    """The run and every item it saw, read in pages (a messy window can hold many)."""
    lines: list[ReportLine] = []
    async with deps.store.transaction() as conn:
        run = await get_run(conn, run_id)
        while True:
            page = await list_items(conn, run_id=run_id, limit=PAGE, offset=len(lines))
            lines.extend(report_line(i) for i in page)
            if len(page) < PAGE:
                break
    return run, lines


def render(run: ReconRun, lines: list[ReportLine]) -> tuple[bytes, bytes, dict[str, Any]]:
    header = ReportHeader(
        run_id=run.id,
        processor=run.processor,
        window_start=run.window_start,
        window_end=run.window_end,
        processor_refunds=int(run.staged.get("refund", 0)),
        healed=run.healed,
    )
    summary = report_summary(header, lines, currency_totals(run))
    return report_csv(lines), summary_json(summary), summary


class ReconciliationReportActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="write_reconciliation_report")
    @domain_errors
    async def write_reconciliation_report(self, req: ReconReportRequest) -> ReconReportOutcome:
        run, lines = await run_report(self.deps, req.run_id)
        csv_bytes, json_bytes, summary = render(run, lines)
        csv_key, json_key = report_keys(run.id)
        blobs = self.deps.blob_store()
        csv_uri = await blobs.put(csv_key, csv_bytes, "text/csv")
        json_uri = await blobs.put(json_key, json_bytes, "application/json")
        async with self.deps.store.transaction() as conn:
            await set_report_uris(conn, run.id, {"csv": csv_uri, "json": json_uri}, now=datetime.now(UTC))
        log.info("reconciliation.report_written", run=run.id, items=len(lines), open=summary["open_items"])
        return ReconReportOutcome(
            run_id=run.id, csv_uri=csv_uri, json_uri=json_uri, items=len(lines), open_items=summary["open_items"],
            for_finance=summary["for_finance"],
        )

    @activity.defn(name="send_reconciliation_email")
    @domain_errors
    async def send_reconciliation_email(self, req: ReconReportRequest) -> DeliveryOutcome:
        """To finance, when the run left items open that it did not heal: counts, totals, where the report is.

        No buyer data. A healed item (a late failure's follow-up run started, say) is not in it: that
        run tells finance itself, and the next reconciliation resolves the item.
        """
        run, lines = await run_report(self.deps, req.run_id)
        open_lines = [line for line in lines if needs_finance(line)]
        recipient = self.deps.settings.email.finance_address
        if not open_lines or not recipient:
            return DeliveryOutcome(message_id="", status="skipped-nothing-open", ticket_count=0)
        by_class: dict[str, int] = {}
        for line in open_lines:
            by_class[line.kind] = by_class.get(line.kind, 0) + 1
        csv_key, json_key = report_keys(run.id)
        context: dict[str, object] = {
            "processor": run.processor,
            "window_label": window_label(run),
            "run_id": run.id,
            "items": len(lines),
            "open_items": len(open_lines),
            "healed": run.healed,
            "by_class": [{"kind": k, "count": n} for k, n in sorted(by_class.items())],
            "totals": [
                {
                    "currency": t.currency,
                    "processor_display": Money(amount=t.processor, currency=t.currency).display(),
                    "ledger_display": Money(amount=t.ledger, currency=t.currency).display(),
                    "difference_display": Money(amount=t.difference, currency=t.currency).display(),
                }
                for t in sorted(currency_totals(run), key=lambda t: t.currency)
            ],
            "report_csv": run.report_uris.get("csv") or csv_key,
            "report_json": run.report_uris.get("json") or json_key,
        }
        sender = self.deps.settings.email.sender

        async def build(mid: str) -> OutgoingEmail:
            rendered = render_email("finance_reconciliation", context)
            return OutgoingEmail(
                message_id=mid, sender=sender, to=[recipient], subject=rendered.subject, text=rendered.text,
                html=rendered.html,
            )

        return await DeliveryActivities(self.deps)._send_once(
            order_code=None,
            operation_id=run.id,
            kind="reconciliation-report",
            recipient=recipient,
            document=f"reconciliation:{run.id}:{run.passes}",
            build=build,
            history=None,
        )
