"""`ticketops audit`: check the invariants against a running system and print what breaks them.

Operators run it against production; the fault soak runs it as its oracle. It reads the
store (and, for a window, the processor through reconciliation's own reader) and never
writes. Findings print as JSON, one object per line with `--json-lines` or one document
by default; the exit status is 1 when there is any, 0 when there is none.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from payment_adapters.reconciliation import ReconciliationSource
from payment_adapters.registry import reconciliation_source
from runtime.settings import Settings, get_settings
from ticketing.audit import (
    FIGURE,
    AuditFinding,
    check_barcodes,
    check_deliveries,
    check_order_money,
    check_order_tickets,
    check_processor_totals,
    check_refund_deadline,
    check_sent_once,
    processor_refunded_totals,
)
from ticketing.models import Processor
from ticketing.processors import reconcilable
from ticketing.reconciliation.classify import LedgerSide, current_attempt
from ticketing.reconciliation.totals import add_into, counted_elsewhere, refund_entries
from ticketing.reconciliation_records import BalanceEntry, Page, ReconWindow
from ticketing.store import audit as reads
from ticketing.store.engine import Store
from ticketing.store.orders import load_order_heads

T = TypeVar("T")


def mail_dir_message_ids(directory: Path) -> list[tuple[str, str]]:
    """(Message-ID, "mail") for every .eml a relay or sink stored: one per message it accepted."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.default)
    found = []
    for path in sorted(directory.glob("*.eml")):
        with path.open("rb") as fh:
            mid = parser.parse(fh).get("Message-ID")
        if mid:
            found.append((str(mid), "mail"))
    return found


async def _every_page(read: Callable[[str | None], Awaitable[Page[T]]]) -> list[T]:
    items: list[T] = []
    cursor: str | None = None
    while True:
        page = await read(cursor)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            return items


async def _window_findings(
    store: Store, source: ReconciliationSource, processor: Processor, window: ReconWindow
) -> list[AuditFinding]:
    """Both totals on the processor refund's clock, by reconciliation's rule: the refunds the processor
    made in the window with every balance entry they have (`refund_entries`), against the ledger
    refunds those claim plus those the ledger made in the window whose processor refund was not
    made in another window (`refunded_in_window`, `counted_elsewhere`)."""
    listed: dict[str | None, list[BalanceEntry]] = {}
    for entry in await _every_page(
        lambda cursor: source.balance_page(window, cursor, 100, failures_only=source.inline_balance)
    ):
        listed.setdefault(entry.source, []).append(entry)
    # A page at a time: an entry belongs to one refund, so each page's entries are summed once,
    # and only the ids stay in memory (a window may hold 100k refunds).
    processor_totals: dict[str, int] = {}
    ids: list[str] = []
    naming: list[str] = []
    cursor: str | None = None
    while True:
        page = await source.refund_page(window, cursor, 100)
        theirs = [e for r in page.items for e in listed.get(r.id, ())]
        add_into(processor_totals, processor_refunded_totals(refund_entries(page.items, theirs)).items())
        ids += [r.id for r in page.items]
        naming += [r.ledger_refund_id for r in page.items if r.ledger_refund_id]
        cursor = page.next_cursor
        if cursor is None:
            break
    async with store.read() as conn:
        unclaimed = await reads.unclaimed_in_window(conn, processor, window, listed=ids, naming=naming)
        orders = await load_order_heads(conn, sorted({r.order_code for r in unclaimed}))
    elsewhere = []
    for refund in unclaimed:  # few: a clean window's processor refunds claim its ledger refunds
        order = orders.get(refund.order_code)
        reference = order.payment.reference if order else None
        if reference is None:
            continue
        side = LedgerSide(refund=refund, payment_reference=reference, refundable_max=0)
        if counted_elsewhere(window, current_attempt(side, await source.refunds_for_payment(reference))):
            elsewhere.append(refund.id)
    async with store.read() as conn:
        ledger = await reads.ledger_window_totals(
            conn, processor, window, listed=ids, naming=naming, elsewhere=elsewhere
        )
    return check_processor_totals(processor, window.label, processor_totals, ledger)


async def processor_findings(settings: Settings, window: ReconWindow) -> list[AuditFinding]:
    """Processor refund totals against the ledger's for the window, read by reconciliation's reader."""
    found: list[AuditFinding] = []
    store = Store(settings.database_url)
    try:
        for processor in (p for p in Processor if reconcilable(p)):
            source = reconciliation_source(settings, processor)
            if source is not None:
                found += await _window_findings(store, source, processor, window)
    finally:
        await store.dispose()
    return found


async def run_audit(
    settings: Settings,
    *,
    now: datetime,
    email_window: timedelta,
    mail_dir: Path | None = None,
    window: ReconWindow | None = None,
) -> list[AuditFinding]:
    found: list[AuditFinding] = []
    timing = settings.refunds
    store = Store(settings.database_url)
    try:
        async with store.read() as conn:
            async for order, refunds in reads.orders_with_refunds(conn):
                found += check_order_money(order, refunds)
                found += check_order_tickets(order, refunds)
            found += check_barcodes(await reads.duplicate_valid_barcodes(conn))
            found += check_deliveries(await reads.open_deliveries(conn, now), now=now, window=email_window)
            sent = await reads.sent_message_ids(conn)
            waiting = await reads.waiting_refunds(conn)
            told = await reads.finance_told(conn, [r.workflow_id for r in waiting])
    finally:
        await store.dispose()
    if mail_dir is not None:
        sent += mail_dir_message_ids(mail_dir)
    found += check_sent_once(sent)
    for refund in waiting:
        found += check_refund_deadline(
            refund,
            now=now,
            confirmation_business_days=timing.confirmation_business_days,
            remind_after=timedelta(days=timing.manual_reminder_days),
            told=refund.workflow_id in told,
        )
    if window is not None:
        found += await processor_findings(settings, window)
    return found


def figures(found: list[AuditFinding]) -> dict[str, int]:
    """Findings counted by what they mean: doubled, lost, impossible, duplicate Message-IDs, stuck."""
    counts = Counter(FIGURE[f.check] for f in found)
    return {name: counts.get(name, 0) for name in ("doubled", "lost", "impossible", "duplicate Message-IDs", "stuck")}


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def audit(
    mail_dir: Annotated[
        Path | None, typer.Option(help="A directory of .eml files the relay stored: cross-checked for Message-IDs.")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="Start of the processor window (UTC); with --until, compare totals.")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="End of the processor window (UTC), exclusive.")] = None,
    email_window_minutes: Annotated[
        float, typer.Option(help="How long a claimed email may stay queued or deferred (email retries: a day).")
    ] = 25 * 60,
) -> None:
    """Check money, tickets, emails and waiting refunds; print findings as JSON; exit 1 when any."""
    settings = get_settings()
    window = None
    if since is not None or until is not None:
        if since is None or until is None:
            raise typer.BadParameter("--since and --until go together")
        window = ReconWindow(start=_utc(since), end=_utc(until))
    found = asyncio.run(
        run_audit(
            settings,
            now=datetime.now(UTC),
            email_window=timedelta(minutes=email_window_minutes),
            mail_dir=mail_dir,
            window=window,
        )
    )
    typer.echo(
        json.dumps(
            {"findings": [f.model_dump(mode="json") for f in found], "figures": figures(found)}, indent=2
        )
    )
    # temporalio core may crash at interpreter exit; this command loads none of it, but leaves the same way.
    os._exit(1 if found else 0)
