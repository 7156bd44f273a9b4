"""Reconciliation activities on the `orders` queue: read both sides, classify, write finance's queue.

Processor pages go to the store's staging index (`recon_staged`); what returns
to the workflow is a cursor and counts. Each activity heartbeats its position
and resumes from the last heartbeat after a crash. Reads are paced under the
processor's read limit with back-off on 429. Activities only read Temporal
(is a refund's workflow still open?); the workflow does every start and signal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.deps import Deps
from activities.pacing import Pacer
from activities.reconciliation_contracts import (
    BeginRun,
    ClassifyResult,
    ClassifyWindow,
    FinishRun,
    HealDone,
    HealPage,
    HealStep,
    Recheck,
    RunSummary,
    StagePage,
    StageResult,
)
from payment_adapters.base import ProcessorUnavailable
from payment_adapters.reconciliation import ReconciliationSource
from payment_adapters.registry import reconciliation_source
from ticketing.audit import compare_totals, processor_refunded_totals
from ticketing.models import Order, Processor, Refund
from ticketing.reconciliation.classify import (
    PAYING,
    Ages,
    LedgerSide,
    classify_ledger_refund,
    classify_payment,
    classify_unknown,
    current_attempt,
)
from ticketing.reconciliation.items import DiscrepancyClass, ItemState
from ticketing.reconciliation.models import Finding, ReconRunStatus
from ticketing.reconciliation.totals import (
    add_into,
    counted_elsewhere,
    involved_processor_refunds,
    is_totals_key,
    refund_entries,
    window_totals_findings,
)
from ticketing.reconciliation_records import (
    BalanceEntry,
    Page,
    ProcessorRefundRecord,
    ReconWindow,
    UndeliveredEvent,
)
from ticketing.refunds import follow_up_workflow_ids
from ticketing.states import RefundStatus
from ticketing.store import reconciliation as recon_store
from ticketing.store.orders import load_order_heads
from ticketing.store.refunds import (
    NON_FINAL,
    ledger_refund_ids_page,
    order_codes_by_payment,
    processor_paid_refunds,
    refunds_by_ids,
    refunds_by_processor_ids,
)
from ticketing.store.tables import webhook_events

T = TypeVar("T")
# Found from what only the item's own window holds (balance entries, records without a ledger row):
# re-checked by that window's re-run or resolved by finance, never from another window.
WINDOW_BOUND = frozenset(
    {DiscrepancyClass.MONEY_MOVEMENT, DiscrepancyClass.MISSING_IN_LEDGER, DiscrepancyClass.FOREIGN}
)
KINDS = ("refund", "balance", "event")


# --- helpers ------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


async def _paced(pacer: Pacer, call: Callable[[], Awaitable[T]], *, tries: int = 8) -> T:
    """One processor read at the pace; a 429 holds every read for a growing back-off and tries again."""
    delay = 1.0
    for attempt in range(tries):
        await pacer.wait()
        try:
            return await call()
        except ProcessorUnavailable as err:
            if err.status != 429 or attempt == tries - 1:
                raise ApplicationError(err.message, type="processor-unavailable") from err
            pacer.back_off(delay)
            delay = min(delay * 2, 30.0)
    raise AssertionError("unreachable")


async def _judged_now(
    side: LedgerSide, source: ReconciliationSource, pacer: Pacer, ages: Ages, *, events: Sequence[UndeliveredEvent] = ()
) -> list[Finding]:
    """A ledger refund against its payment's refunds at the processor now, outside any window's pages
    (an earlier window's item re-checked, an earlier window's refund with news in this one): no money
    movement, which only the refund's own window can judge."""
    records: list[ProcessorRefundRecord] = []
    if side.payment_reference:
        ref = side.payment_reference
        records = await _paced(pacer, lambda: source.refunds_for_payment(ref))
    return classify_ledger_refund(side, records, balance=None, events=events, ages=ages, complete=True)


async def _take(waiting: asyncio.Queue[T], reader: asyncio.Future[None]) -> T:
    """The next page read ahead; the reader's error if it failed before reading one."""
    if not waiting.empty():
        return waiting.get_nowait()
    getting = asyncio.ensure_future(waiting.get())
    either: set[asyncio.Future[Any]] = {getting, reader}
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    failed = reader.exception() if reader.done() and not getting.done() else None
    if failed is not None:
        getting.cancel()
        raise failed
    return await getting


def _staged_row(kind: str, record: BaseModel) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    if isinstance(record, ProcessorRefundRecord):
        return {
            "record_id": record.id,
            "ledger_refund_id": record.ledger_refund_id,
            "idempotency_key": record.idempotency_key,
            "link": record.payment_reference,
            "data": data,
        }
    if isinstance(record, BalanceEntry):
        return {"record_id": record.id, "ledger_refund_id": None, "idempotency_key": None,
                "link": record.source, "data": data}
    assert isinstance(record, UndeliveredEvent)
    return {"record_id": record.id, "ledger_refund_id": None, "idempotency_key": None,
            "link": record.processor_refund_id, "data": data}


def _refundable_max(order: Order) -> int:
    return order.paid_total.amount - order.non_refundable_fees.amount


class ReconciliationActivities:
    def __init__(self, deps: Deps, client: Client | None = None) -> None:
        self.deps = deps
        self.client = client

    def _source(self, processor: Processor) -> ReconciliationSource:
        source = self.deps.recon_sources.get(processor)
        if source is None:
            source = reconciliation_source(self.deps.settings, processor)
            if source is not None:
                self.deps.recon_sources[processor] = source
        if source is None:
            raise ApplicationError(
                f"{processor.value} has no reconciliation source", type="recon-source-missing", non_retryable=True
            )
        return source

    async def _workflow_open(self, workflow_id: str) -> bool:
        if self.client is None:
            raise ApplicationError("no Temporal client for visibility", type="recon-no-client", non_retryable=True)
        try:
            desc = await self.client.get_workflow_handle(workflow_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return desc.status == WorkflowExecutionStatus.RUNNING

    async def _refund_run_open(self, refund: Refund) -> bool:
        """The refund's own run, or a follow-up run of its attempt, is alive."""
        for workflow_id in (refund.workflow_id, *follow_up_workflow_ids(refund.id, refund.attempt)):
            if await self._workflow_open(workflow_id):
                return True
        return False

    async def _sides(self, refunds: list[Refund], orders: dict[str, Order]) -> dict[str, LedgerSide]:
        # A refund-error whose processor refund is known may still hear of it: its run, if open, takes the news.
        waiting = [
            r for r in refunds
            if r.status in NON_FINAL or (r.status is RefundStatus.FAILED and r.processor_refund_id)
        ]
        opened = await asyncio.gather(*(self._refund_run_open(r) for r in waiting))
        open_by_id = {r.id: o for r, o in zip(waiting, opened, strict=True)}
        sides = {}
        for r in refunds:
            order = orders.get(r.order_code)
            sides[r.id] = LedgerSide(
                refund=r,
                payment_reference=order.payment.reference if order else None,
                refundable_max=_refundable_max(order) if order else 0,
                workflow_open=open_by_id.get(r.id),
            )
        return sides

    # --- run bookkeeping ----------------------------------------------------------------------

    @activity.defn(name="begin_reconciliation")
    async def begin_reconciliation(self, req: BeginRun) -> int:
        """The run's row, and a new pass number (a re-run of the window is pass 2, 3, ...)."""
        owner = activity.info().workflow_id
        try:
            async with self.deps.store.transaction() as conn:
                return await recon_store.begin_run(
                    conn, run_id=req.run_id, processor=req.processor.value, window=req.window, dry_run=req.dry_run,
                    now=_now(), workflow_id=owner, owner_alive=self._workflow_open,
                )
        except recon_store.WindowBusy as busy:
            raise ApplicationError(
                f"{req.run_id} is being reconciled by {busy.owner}", type="recon-window-busy", non_retryable=True
            ) from busy

    # --- stage the processor's side -----------------------------------------------------------

    @activity.defn(name="stage_processor_page")
    async def stage_processor_page(self, req: StagePage) -> StageResult:
        """Up to `max_pages` pages into the staging index; resumes from its last heartbeat."""
        source = self._source(req.processor)
        cursor = req.cursor
        staged = 0
        details = activity.info().heartbeat_details
        if details:
            cursor, staged = details[0], int(details[1])
        pacer = Pacer(req.rate_per_second)

        async def fetch(at: str | None) -> Page[Any]:
            if req.kind == "refund":
                return await source.refund_page(req.window, at, req.page_size)
            if req.kind == "balance":  # the failures only, when the refunds bring their own debits
                return await source.balance_page(req.window, at, req.page_size, failures_only=source.inline_balance)
            return await source.undelivered_event_page(req.window, at, req.page_size)

        async def reader(at: str | None) -> None:
            """Reads ahead of the writer (at most two pages waiting), so writing and judging a page
            take no read slot; stops after the activity's last page."""
            for _ in range(req.max_pages):
                page = await _paced(pacer, lambda: fetch(at))  # noqa: B023
                await waiting.put(page)
                at = page.next_cursor
                if at is None:
                    return

        judge = None
        if req.judge is not None and req.kind == "refund":
            judge = ClassifyWindow(
                run_id=req.run_id, pass_no=0, processor=req.processor, window=req.window, ages=req.judge
            )
        # The heartbeat names only what is written (and judged), so a resumed attempt reads the
        # pages read ahead again (their rows are upserted once).
        waiting: asyncio.Queue[Page[Any]] = asyncio.Queue(maxsize=2)
        reading = asyncio.ensure_future(reader(cursor))
        try:
            for _ in range(req.max_pages):
                page = await _take(waiting, reading)
                rows = [_staged_row(req.kind, r) for r in page.items]
                async with self.deps.store.transaction() as conn:
                    await recon_store.stage(conn, req.run_id, req.kind, rows)
                if judge is not None and page.items:
                    await self._judge_staged(judge, page.items)
                staged += len(page.items)
                cursor = page.next_cursor
                activity.heartbeat(cursor, staged)
                if cursor is None:
                    return StageResult(cursor=None, done=True, staged=staged)
            return StageResult(cursor=cursor, done=False, staged=staged)
        finally:
            reading.cancel()

    async def _judge_staged(self, req: ClassifyWindow, records: list[ProcessorRefundRecord]) -> None:
        """Classify a page just staged against everything staged so far; nothing is recorded here.

        A page with any disagreement is marked to be classified again once every page is staged
        (so its items are written from the whole window); a clean page is done, unless one of its
        refunds shares a ledger key or a payment with another, which the classify step finds.
        """
        if await self._classify_processor_page(req, records):
            async with self.deps.store.transaction() as conn:
                await recon_store.mark(conn, req.run_id, recon_store.RECHECK, [p.id for p in records])

    # --- classify -----------------------------------------------------------------------------

    @activity.defn(name="classify_reconciliation")
    async def classify_reconciliation(self, req: ClassifyWindow) -> ClassifyResult:
        """Both sides of the window into items: first the processor's refunds, then the ledger's, then the
        refunds of earlier windows that this window's undelivered events or balance entries are about."""
        result = ClassifyResult()
        phase, after = "processor", ""
        details = activity.info().heartbeat_details
        if details:
            phase, after = details[0], details[1]
        pacer = Pacer(req.rate_per_second)
        if phase == "processor":
            while True:
                async with self.deps.store.read() as conn:
                    if req.judged_while_staging:  # the rest was judged clean as it was staged
                        rows = await recon_store.staged_to_reclassify(conn, req.run_id, after=after, limit=req.page)
                    else:
                        rows = await recon_store.staged_page(conn, req.run_id, "refund", after=after, limit=req.page)
                if not rows:
                    break
                found = await self._classify_processor_page(req, [ProcessorRefundRecord(**r) for r in rows])
                await self._record(req, found, result)
                after = rows[-1]["id"]
                activity.heartbeat("processor", after)
            phase, after = "ledger", ""
        if phase == "ledger":
            while True:
                async with self.deps.store.read() as conn:
                    page = await ledger_refund_ids_page(
                        conn, req.processor, req.window.start, req.window.end, after=after, limit=req.page
                    )
                if not page:
                    break
                found = await self._classify_ledger_page(req, page, pacer)
                await self._record(req, found, result)
                after = page[-1][0]
                activity.heartbeat("ledger", after)
            phase, after = "news", ""
        while True:
            async with self.deps.store.read() as conn:
                ids = await recon_store.news_of_other_windows_page(conn, req.run_id, after=after, limit=req.page)
            if not ids:
                break
            await self._record(req, await self._classify_news_page(req, ids, pacer), result)
            after = ids[-1]
            activity.heartbeat("news", after)
        await self._record(req, await self._totals_findings(req), result)
        return result

    async def _totals_findings(self, req: ClassifyWindow) -> list[Finding]:
        """The window's totals, kept on the run for its report, and an item per currency whose
        difference this pass's items do not explain. After every refund is judged, before the re-check:
        a re-run that still disagrees finds the same item again, one that agrees lets the re-check resolve it."""
        async with self.deps.store.read() as conn:
            totals = await _window_totals(conn, req.run_id, req.processor, req.window)
            explained = await _explained(conn, req.run_id, req.pass_no, req.processor, req.window)
        async with self.deps.store.transaction() as conn:
            await recon_store.update_run(conn, req.run_id, now=_now(), totals=totals)
        return window_totals_findings(req.window, totals, explained)

    async def _record(self, req: ClassifyWindow, found: list[Finding], result: ClassifyResult) -> None:
        async with self.deps.store.transaction() as conn:
            counts = await recon_store.record_findings(
                conn, processor=req.processor.value, run_id=req.run_id, pass_no=req.pass_no, findings=found,
                now=_now(),
            )
        result.new += counts["new"]
        result.reopened += counts["reopened"]
        result.seen += counts["seen"]

    async def _classify_processor_page(
        self, req: ClassifyWindow, records: list[ProcessorRefundRecord]
    ) -> list[Finding]:
        page_ids = {p.id for p in records}
        known = {p.id: p for p in records}

        def parse(rows: list[dict[str, Any]]) -> list[ProcessorRefundRecord]:
            """Staged rows as records; those of this page are parsed already."""
            return [known.get(d["id"]) or ProcessorRefundRecord(**d) for d in rows]

        async with self.deps.store.read() as conn:
            by_id = await refunds_by_ids(conn, [p.ledger_refund_id for p in records if p.ledger_refund_id])
            # A processor refund without our metadata may still be one the ledger recorded by its id.
            by_processor_id = await refunds_by_processor_ids(conn, [p.id for p in records if not p.ledger_refund_id])
            ledger = dict(by_id) | {r.id: r for r in by_processor_id.values()}
            # Every staged refund that names these ledger refunds, in whichever page it sits.
            related = parse(await recon_store.staged_by_ledger(conn, req.run_id, list(ledger)))
            refs = sorted({p.payment_reference for p in records if p.payment_reference})
            ours = await order_codes_by_payment(conn, refs)
            on_payments = parse(await recon_store.staged_by_link(conn, req.run_id, "refund", refs))
            orders = await load_order_heads(conn, sorted({r.order_code for r in ledger.values()} | set(ours.values())))
            paid_elsewhere = await processor_paid_refunds(conn, sorted(set(ours.values())))
            all_ids = sorted(page_ids | {p.id for p in related})
            # Each refund's own entries came with it (inline); a source that does not inline them
            # has them in the balance listing.
            in_hand = {p.id: p for p in (*records, *related)}
            listed = [pid for pid in all_ids if in_hand[pid].balance_entries is None]
            balance = [BalanceEntry(**d) for d in await recon_store.staged_by_link(conn, req.run_id, "balance", listed)]
            balance += [b for p in in_hand.values() for b in p.balance_entries or ()]
            events = [
                UndeliveredEvent(**d) for d in await recon_store.staged_by_link(conn, req.run_id, "event", all_ids)
            ]
        sides = await self._sides(list(ledger.values()), orders)
        for p in related:
            known.setdefault(p.id, p)
        naming: dict[str, list[ProcessorRefundRecord]] = {}
        for p in known.values():
            if p.ledger_refund_id:
                naming.setdefault(p.ledger_refund_id, []).append(p)
        balance_of: dict[str, list[BalanceEntry]] = {}
        for b in balance:
            balance_of.setdefault(b.source or "", []).append(b)
        events_of: dict[str, list[UndeliveredEvent]] = {}
        for e in events:
            events_of.setdefault(e.processor_refund_id or "", []).append(e)
        found: list[Finding] = []
        for refund_id, side in sides.items():
            records_for = list(naming.get(refund_id, []))
            own = known.get(side.refund.processor_refund_id or "")
            if own is not None and own.ledger_refund_id != refund_id:
                records_for.append(own)
            # Classified once: in the page that holds the first of its processor refunds.
            if not records_for or min(p.id for p in records_for) not in page_ids:
                continue
            found += classify_ledger_refund(
                side,
                records_for,
                balance=[b for p in records_for for b in balance_of.get(p.id, ())],
                events=[e for p in records_for for e in events_of.get(p.id, ())],
                ages=req.ages,
                complete=False,
            )
        claimed = {p.id for p in related} | set(by_processor_id)
        for p in records:
            if p.id in claimed or (p.ledger_refund_id and p.ledger_refund_id in ledger):
                continue
            found += classify_unknown(p, ours=p.payment_reference in ours if p.payment_reference else False)
        found += self._payments(on_payments, ours, orders, paid_elsewhere, page_ids)
        return found

    def _payments(
        self,
        on_payments: list[ProcessorRefundRecord],
        ours: dict[str, str],
        orders: dict[str, Order],
        paid_elsewhere: list[tuple[str, str, int]],
        page_ids: set[str],
    ) -> list[Finding]:
        """Over-refund per payment: the window's paying refunds plus those the ledger knows from elsewhere."""
        by_payment: dict[str, list[ProcessorRefundRecord]] = {}
        for p in on_payments:
            by_payment.setdefault(p.payment_reference or "", []).append(p)
        by_order: dict[str, list[tuple[str, int]]] = {}
        for code, pid, amount in paid_elsewhere:
            by_order.setdefault(code, []).append((pid, amount))
        found: list[Finding] = []
        for ref, code in ours.items():
            in_window = by_payment.get(ref, [])
            if not in_window or min(p.id for p in in_window) not in page_ids:
                continue
            order = orders.get(code)
            if order is None:
                continue
            seen = {p.id for p in in_window}
            paying = [(p.id, p.amount) for p in in_window if p.status in PAYING]
            paying += [(pid, amount) for pid, amount in by_order.get(code, []) if pid not in seen]
            found += classify_payment(ref, code, _refundable_max(order), order.currency, paying)
        return found

    async def _classify_ledger_page(
        self, req: ClassifyWindow, page: list[tuple[str, str | None]], pacer: Pacer
    ) -> list[Finding]:
        """Ledger refunds no staged processor refund claims: ask the processor about their payment."""
        async with self.deps.store.read() as conn:
            named = await recon_store.staged_by_ledger_ids(conn, req.run_id, [rid for rid, _ in page])
            by_pid = await recon_store.staged_ids(conn, req.run_id, "refund", [pid for _, pid in page if pid])
            claimed = named | {rid for rid, pid in page if pid in by_pid}
            unclaimed = await refunds_by_ids(conn, [rid for rid, _ in page if rid not in claimed])
            orders = await load_order_heads(conn, sorted({r.order_code for r in unclaimed.values()}))
        sides = await self._sides(list(unclaimed.values()), orders)
        source = self._source(req.processor) if unclaimed else None
        found: list[Finding] = []
        elsewhere: list[str] = []
        for refund in unclaimed.values():
            side = sides[refund.id]
            needs_processor = (
                refund.status in (RefundStatus.CONFIRMING, RefundStatus.SUCCEEDED) and refund.manual_reference is None
            ) or (refund.status is RefundStatus.REFUNDING and side.workflow_open is False)
            records: list[ProcessorRefundRecord] = []
            if needs_processor and side.payment_reference and source is not None:
                ref, src = side.payment_reference, source
                records = await _paced(pacer, lambda: src.refunds_for_payment(ref))  # noqa: B023
            current = current_attempt(side, records)
            if counted_elsewhere(req.window, current):
                elsewhere.append(refund.id)
            found += classify_ledger_refund(side, records, balance=None, ages=req.ages, complete=needs_processor)
        if elsewhere:
            async with self.deps.store.transaction() as conn:
                await recon_store.mark(conn, req.run_id, recon_store.ELSEWHERE, elsewhere)
        return found

    async def _classify_news_page(
        self, req: ClassifyWindow, processor_refund_ids: list[str], pacer: Pacer
    ) -> list[Finding]:
        """Ledger refunds of earlier windows with news in this one, judged against the processor now.

        A refund the bank returns days later has its `refund.failed` event and its credit in the window
        they happen in, not in the refund's own (reconciled clean already); if that webhook never
        arrived, this is the only place the failure shows. Judged as the re-check judges (the payment's
        refunds, no money movement: that belongs to the refund's own window), with the window's events
        about it, so a lost late failure is a missed webhook healed by the late-failure run. Refunds the
        ledger made in this window were judged by the ledger pass already.
        """
        async with self.deps.store.read() as conn:
            ledger = await refunds_by_processor_ids(conn, processor_refund_ids)
            ledger = {pid: r for pid, r in ledger.items() if not req.window.start <= r.created_at < req.window.end}
            orders = await load_order_heads(conn, sorted({r.order_code for r in ledger.values()}))
            events = [
                UndeliveredEvent(**d) for d in await recon_store.staged_by_link(conn, req.run_id, "event", list(ledger))
            ]
        sides = await self._sides(list(ledger.values()), orders)
        source = self._source(req.processor) if ledger else None
        found: list[Finding] = []
        for pid, refund in ledger.items():
            side = sides[refund.id]
            if source is not None and side.payment_reference:
                about = [e for e in events if e.processor_refund_id == pid]
                found += await _judged_now(side, source, pacer, req.ages, events=about)
        return found

    # --- re-check earlier items ---------------------------------------------------------------

    @activity.defn(name="recheck_reconciliation_items")
    async def recheck_reconciliation_items(self, req: Recheck) -> int:
        """Resolve open items this pass did not find again where both sides now agree."""
        resolved = 0
        checked = 0
        after = ""
        source = self._source(req.processor)
        pacer = Pacer(req.rate_per_second)
        while checked < req.limit:
            async with self.deps.store.read() as conn:
                items = await recon_store.unseen_open_items(
                    conn, processor=req.processor.value, run_id=req.run_id, pass_no=req.pass_no, after=after,
                    limit=100,
                )
            if not items:
                break
            for item in items:
                checked += 1
                after = item.id
                if item.last_seen_run == req.run_id:
                    agree = True  # this window, read in full again, no longer shows it
                elif item.refund_id and item.cls not in WINDOW_BOUND:
                    agree = not await self._still_found(item.refund_id, item.cls, item.key, source, pacer, req.ages)
                else:
                    continue  # found from processor records only: finance resolves it, or its window's re-run
                if agree:
                    async with self.deps.store.transaction() as conn:
                        await recon_store.transition_item(
                            conn, item.id, ItemState.RESOLVED, reason="both sides agree",
                            actor=recon_store.RECONCILIATION_ACTOR, now=_now(),
                        )
                    resolved += 1
            activity.heartbeat(after)
        return resolved

    async def _still_found(
        self, refund_id: str, cls: DiscrepancyClass, key: str, source: ReconciliationSource, pacer: Pacer, ages: Ages
    ) -> bool:
        async with self.deps.store.read() as conn:
            refunds = await refunds_by_ids(conn, [refund_id])
            if refund_id not in refunds:
                return True
            refund = refunds[refund_id]
            orders = await load_order_heads(conn, [refund.order_code])
        side = (await self._sides([refund], orders))[refund_id]
        found = await _judged_now(side, source, pacer, ages)
        if cls is DiscrepancyClass.MISSED_WEBHOOK:  # its events are not at hand here: the refund still disagrees
            return any(f.cls is DiscrepancyClass.STATUS_MISMATCH and f.refund_id == refund_id for f in found)
        return any(f.cls is cls and f.key == key for f in found)

    # --- healing ------------------------------------------------------------------------------

    @activity.defn(name="reconciliation_heal_page")
    async def reconciliation_heal_page(self, req: HealPage) -> list[HealStep]:
        async with self.deps.store.read() as conn:
            items = await recon_store.healing_page(
                conn, run_id=req.run_id, pass_no=req.pass_no, after=req.after, limit=req.limit
            )
            refunds = await refunds_by_ids(conn, [i.refund_id for i in items if i.refund_id])
        steps = []
        for item in items:
            refund = refunds.get(item.refund_id or "")
            if refund is None:
                continue
            proc = item.processor_side or {}
            steps.append(
                HealStep(
                    item_id=item.id,
                    action=item.suggested_action.value,
                    route=proc.get("route"),
                    refund_id=refund.id,
                    order_code=refund.order_code,
                    workflow_id=refund.workflow_id,
                    attempt=refund.attempt,
                    processor_refund_id=proc.get("id"),
                    processor_status=proc.get("status"),
                    failure_reason=proc.get("failure_reason"),
                    event_id=proc.get("event_id"),
                    events=[(str(e[0]), str(e[1])) for e in proc.get("events") or []],
                )
            )
        return steps

    @activity.defn(name="reconciliation_mark_healed")
    async def reconciliation_mark_healed(self, req: HealDone) -> int:
        """Note the steps taken; a replayed event is recorded as seen, so a late delivery is a duplicate."""
        now = _now()
        async with self.deps.store.transaction() as conn:
            for event_id, type_ in req.events:
                exists = (
                    await conn.execute(webhook_events.select().where(webhook_events.c.id == event_id))
                ).first()
                if exists is None:
                    await conn.execute(
                        webhook_events.insert().values(id=event_id, source="stripe", type=type_, received_at=now)
                    )
            return await recon_store.mark_healed(conn, req.item_ids, run_id=req.run_id, now=now)

    # --- finish -------------------------------------------------------------------------------

    @activity.defn(name="finish_reconciliation")
    async def finish_reconciliation(self, req: FinishRun) -> RunSummary:
        """Counts per class (the window's report), totals per currency, and the run's end."""
        async with self.deps.store.read() as conn:
            staged = await recon_store.staged_counts(conn, req.run_id)
            # Counted when the window was classified; a run that failed before that counts what it staged.
            totals = (await recon_store.get_run(conn, req.run_id)).totals or await _window_totals(
                conn, req.run_id, req.processor, req.window
            )
        async with self.deps.store.transaction() as conn:
            counts = await recon_store.count_items(conn, run_id=req.run_id)
            open_items = sum(
                (await recon_store.count_items(conn, processor=req.processor.value, open_only=True)).values()
            )
            await recon_store.update_run(
                conn, req.run_id, now=_now(), status=req.status, counts=counts, totals=totals, staged=staged,
                healed=req.healed, resolved=req.resolved, open_items=open_items, error=req.error,
                ended_at=_now() if req.status != ReconRunStatus.RUNNING else None,
            )
            if req.status == ReconRunStatus.COMPLETED:
                await recon_store.clear_staged(conn, req.run_id)
        return RunSummary(counts=counts, found=sum(counts.values()), open_items=open_items, staged=staged)


# --- the window's totals --------------------------------------------------------------------------


async def _entries_of(conn: AsyncConnection, run_id: str, rows: list[dict[str, Any]]) -> list[BalanceEntry]:
    """Staged refunds' balance entries: their own and those staged from the listing (`refund_entries`)."""
    refunds = [ProcessorRefundRecord(**d) for d in rows]
    listed = await recon_store.staged_by_link(conn, run_id, "balance", [r.id for r in refunds])
    return refund_entries(refunds, [BalanceEntry(**d) for d in listed])


async def _window_totals(
    conn: AsyncConnection, run_id: str, processor: Processor, window: ReconWindow
) -> dict[str, dict[str, int]]:
    """Per currency, both sides on the processor refund's clock (`ticketing.reconciliation.totals`).

    Summed a page at a time: memory stays flat however many refunds the window holds.
    """
    processor_totals: dict[str, int] = {}
    after = ""
    while True:
        rows = await recon_store.staged_page(conn, run_id, "refund", after=after, limit=1000)
        if not rows:
            break
        add_into(processor_totals, processor_refunded_totals(await _entries_of(conn, run_id, rows)).items())
        after = rows[-1]["id"]
    ledger_totals = await recon_store.ledger_window_totals(conn, run_id, processor, window)
    return compare_totals(processor_totals, ledger_totals)


async def _explained(
    conn: AsyncConnection, run_id: str, pass_no: int, processor: Processor, window: ReconWindow
) -> dict[str, int]:
    """Per currency, the part of the difference carried by refunds this pass raised items about:
    their processor refunds' balance entries less their ledger refunds' counted amounts (each once,
    with its counterpart on the other side)."""
    refund_ids: set[str] = set()
    processor_ids: set[str] = set()
    after = ""
    while True:
        items = await recon_store.pass_items_page(conn, run_id=run_id, pass_no=pass_no, after=after, limit=500)
        if not items:
            break
        for item in items:
            if item.cls is DiscrepancyClass.MONEY_MOVEMENT and is_totals_key(item.key):
                continue
            if item.refund_id:
                refund_ids.add(item.refund_id)
            processor_ids |= involved_processor_refunds(item.processor_refund_id, item.processor_side)
        after = items[-1].id
    explained: dict[str, int] = {}
    ledger = await recon_store.ledger_window_refunds(
        conn, run_id, processor, window, refund_ids=sorted(refund_ids), processor_refund_ids=sorted(processor_ids)
    )
    add_into(explained, ((currency, -amount) for _, _, currency, amount in ledger))
    processor_ids |= {pid for _, pid, _, _ in ledger if pid}
    ids = sorted(processor_ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        rows = await recon_store.staged_by_ids(conn, run_id, "refund", chunk)
        add_into(explained, processor_refunded_totals(await _entries_of(conn, run_id, rows)).items())
    return explained
