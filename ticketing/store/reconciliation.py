"""Reconciliation in the store: runs, finance's item queue and the staging index of processor records.

Items are keyed by `item_id(processor, class, key)`, so writing the findings of
a window twice leaves one row per disagreement. Staged records are keyed per
run and record id, so re-reading a page after a crash overwrites, never adds.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.errors import ConcurrentModification, NotFound
from ticketing.models import Processor
from ticketing.reconciliation.items import (
    HEALING,
    DiscrepancyClass,
    ItemState,
    Severity,
    SuggestedAction,
    item_id,
    move_item,
)
from ticketing.reconciliation.models import Finding, ReconItem, ReconRun, ReconRunStatus
from ticketing.reconciliation_records import ReconWindow
from ticketing.states import RefundStatus
from ticketing.store.tables import recon_items, recon_runs, recon_staged, refunds

RECONCILIATION_ACTOR = "reconciliation"


# --- runs ---------------------------------------------------------------------------------------


def _run(r: Any) -> ReconRun:
    return ReconRun(
        id=r.id,
        processor=r.processor,
        window_start=r.window_start,
        window_end=r.window_end,
        status=r.status,
        dry_run=r.dry_run,
        passes=r.passes,
        workflow_id=r.workflow_id,
        counts=dict(r.counts or {}),
        totals=dict(r.totals or {}),
        staged=dict(r.staged or {}),
        healed=r.healed,
        resolved=r.resolved,
        open_items=r.open_items,
        report_uris=dict(r.report_uris or {}),
        error=r.error,
        started_at=r.started_at,
        ended_at=r.ended_at,
    )


class WindowBusy(Exception):
    """Another execution is reconciling this window right now (a scheduled run and a "run now")."""

    def __init__(self, owner: str) -> None:
        super().__init__(f"the window is being reconciled by {owner}")
        self.owner = owner


async def begin_run(
    conn: AsyncConnection,
    *,
    run_id: str,
    processor: str,
    window: ReconWindow,
    dry_run: bool,
    now: datetime,
    workflow_id: str | None = None,
    owner_alive: Callable[[str], Awaitable[bool]] | None = None,
) -> int:
    """Start a pass over the window (the first, or a re-run); returns the pass number.

    A re-run keeps the row (same id, same window) and forgets what the last pass read. A
    retried start of the same execution gets its pass back. While another execution that is
    still alive holds the window, `WindowBusy`: two passes would share one staging index.
    """
    row = (
        await conn.execute(
            sa.select(recon_runs.c.passes, recon_runs.c.status, recon_runs.c.workflow_id).where(
                recon_runs.c.id == run_id
            )
        )
    ).first()
    if row is not None and row.status == ReconRunStatus.RUNNING and row.workflow_id:
        if row.workflow_id == workflow_id:
            return int(row.passes)
        if owner_alive is not None and await owner_alive(row.workflow_id):
            raise WindowBusy(row.workflow_id)
    await conn.execute(sa.delete(recon_staged).where(recon_staged.c.run_id == run_id))
    if row is None:
        await conn.execute(
            recon_runs.insert().values(
                id=run_id,
                processor=processor,
                window_start=window.start,
                window_end=window.end,
                status=ReconRunStatus.RUNNING,
                dry_run=dry_run,
                passes=1,
                workflow_id=workflow_id,
                counts={},
                totals={},
                staged={},
                healed=0,
                resolved=0,
                open_items=0,
                report_uris={},
                started_at=now,
                updated_at=now,
            )
        )
        return 1
    passes = int(row.passes) + 1
    await conn.execute(
        recon_runs.update()
        .where(recon_runs.c.id == run_id)
        .values(
            status=ReconRunStatus.RUNNING, dry_run=dry_run, passes=passes, workflow_id=workflow_id, counts={},
            totals={}, staged={}, healed=0, resolved=0, open_items=0, error=None, started_at=now, ended_at=None,
            updated_at=now,
        )
    )
    return passes


async def update_run(conn: AsyncConnection, run_id: str, *, now: datetime, **values: Any) -> None:
    """Counts, totals, status, report uris: whatever the step that just finished knows."""
    await conn.execute(recon_runs.update().where(recon_runs.c.id == run_id).values(**values, updated_at=now))


async def set_report_uris(conn: AsyncConnection, run_id: str, uris: dict[str, str], *, now: datetime) -> None:
    """For the report writer: where the CSV and JSON of this run went."""
    await update_run(conn, run_id, now=now, report_uris=uris)


async def get_run(conn: AsyncConnection, run_id: str) -> ReconRun:
    row = (await conn.execute(sa.select(recon_runs).where(recon_runs.c.id == run_id))).first()
    if row is None:
        raise NotFound(f"reconciliation run {run_id} does not exist", type="recon-run-not-found")
    return _run(row)


async def list_runs(
    conn: AsyncConnection,
    *,
    processor: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[ReconRun]:
    """Newest window first."""
    stmt = sa.select(recon_runs).order_by(recon_runs.c.window_start.desc(), recon_runs.c.id)
    if processor:
        stmt = stmt.where(recon_runs.c.processor == processor)
    if status:
        stmt = stmt.where(recon_runs.c.status == status)
    return [_run(r) for r in (await conn.execute(stmt.limit(limit).offset(offset))).all()]


# --- items ----------------------------------------------------------------------------------------


def _item(r: Any) -> ReconItem:
    return ReconItem(
        id=r.id,
        processor=r.processor,
        cls=DiscrepancyClass(r.cls),
        key=r.key,
        severity=Severity(r.severity),
        state=ItemState(r.state),
        reason=r.reason,
        actor=r.actor,
        state_at=r.state_at,
        suggested_action=SuggestedAction(r.suggested_action),
        ledger=r.ledger,
        processor_side=r.processor_side,
        refund_id=r.refund_id,
        processor_refund_id=r.processor_refund_id,
        order_code=r.order_code,
        amount=r.amount,
        currency=r.currency,
        first_seen_run=r.first_seen_run,
        last_seen_run=r.last_seen_run,
        healed_at=r.healed_at,
        healed_by_run=r.healed_by_run,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


async def record_findings(
    conn: AsyncConnection,
    *,
    processor: str,
    run_id: str,
    pass_no: int,
    findings: Iterable[Finding],
    now: datetime,
) -> dict[str, int]:
    """Write findings as items, idempotently; returns {"new": n, "reopened": n, "seen": n}.

    An item already open or acknowledged keeps its state and gets the newest evidence; a
    resolved one found again is open again (finance sees it came back).
    """
    found = list(findings)
    counts = {"new": 0, "reopened": 0, "seen": 0}
    if not found:
        return counts
    ids = {item_id(processor, f.cls, f.key): f for f in found}
    existing = {
        r.id: r
        for r in (
            await conn.execute(
                sa.select(recon_items.c.id, recon_items.c.state, recon_items.c.healed_at).where(
                    recon_items.c.id.in_(list(ids))
                )
            )
        ).all()
    }
    for iid, f in ids.items():
        evidence = {
            "severity": int(f.severity),
            "suggested_action": f.action.value,
            "ledger": f.ledger,
            "processor_side": f.processor,
            "refund_id": f.refund_id,
            "processor_refund_id": f.processor_refund_id,
            "order_code": f.order_code,
            "amount": f.amount,
            "currency": f.currency,
            "last_seen_run": run_id,
            "last_seen_pass": pass_no,
            "updated_at": now,
        }
        row = existing.get(iid)
        counted_only = f.severity is Severity.INFO  # foreign: in the report, never in finance's queue
        if row is None:
            counts["new"] += 1
            state = ItemState.RESOLVED if counted_only else ItemState.OPEN
            await conn.execute(
                recon_items.insert().values(
                    id=iid, processor=processor, cls=f.cls.value, key=f.key, state=state.value,
                    reason="counted only" if counted_only else None,
                    actor=RECONCILIATION_ACTOR if counted_only else None,
                    state_at=now, first_seen_run=run_id, created_at=now, **evidence,
                )
            )
            continue
        counts["seen"] += 1
        values: dict[str, Any] = dict(evidence)
        if ItemState(row.state) is ItemState.RESOLVED and not counted_only:
            counts["reopened"] += 1
            values |= {
                "state": move_item(ItemState.RESOLVED, ItemState.OPEN).value,
                "reason": "found again",
                "actor": RECONCILIATION_ACTOR,
                "state_at": now,
                "healed_at": None,
                "healed_by_run": None,
            }
        await conn.execute(recon_items.update().where(recon_items.c.id == iid).values(**values))
    return counts


async def record_finding_once(
    conn: AsyncConnection, *, processor: str, source: str, finding: Finding, now: datetime
) -> tuple[str, bool]:
    """Open an item for a finding made outside a run (a webhook), unless its item exists in any state.

    (item id, whether it is new). A redelivery neither adds a second item nor reopens one finance resolved.
    """
    iid = item_id(processor, finding.cls, finding.key)
    stmt = _upsert(conn)(recon_items).values(
        id=iid, processor=processor, cls=finding.cls.value, key=finding.key, severity=int(finding.severity),
        state=ItemState.OPEN.value, state_at=now, suggested_action=finding.action.value, ledger=finding.ledger,
        processor_side=finding.processor, refund_id=finding.refund_id,
        processor_refund_id=finding.processor_refund_id, order_code=finding.order_code, amount=finding.amount,
        currency=finding.currency, first_seen_run=source, last_seen_run=source, last_seen_pass=0,
        created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["id"])
    result = await conn.execute(stmt)
    return iid, bool(result.rowcount)


async def get_item(conn: AsyncConnection, iid: str) -> ReconItem:
    row = (await conn.execute(sa.select(recon_items).where(recon_items.c.id == iid))).first()
    if row is None:
        raise NotFound(f"reconciliation item {iid} does not exist", type="recon-item-not-found")
    return _item(row)


async def list_items(
    conn: AsyncConnection,
    *,
    state: ItemState | Sequence[ItemState] | None = None,
    cls: DiscrepancyClass | None = None,
    run_id: str | None = None,
    refund_id: str | None = None,
    processor: str | None = None,
    min_severity: Severity | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ReconItem]:
    """Most severe first, then oldest. `run_id`: items last seen by that run (its window's report)."""
    stmt = sa.select(recon_items).order_by(
        recon_items.c.severity.desc(), recon_items.c.created_at, recon_items.c.id
    )
    if state is not None:
        states = [state] if isinstance(state, ItemState) else list(state)
        stmt = stmt.where(recon_items.c.state.in_([s.value for s in states]))
    if cls is not None:
        stmt = stmt.where(recon_items.c.cls == cls.value)
    if run_id is not None:
        stmt = stmt.where(recon_items.c.last_seen_run == run_id)
    if refund_id is not None:
        stmt = stmt.where(recon_items.c.refund_id == refund_id)
    if processor is not None:
        stmt = stmt.where(recon_items.c.processor == processor)
    if min_severity is not None:
        stmt = stmt.where(recon_items.c.severity >= int(min_severity))
    return [_item(r) for r in (await conn.execute(stmt.limit(limit).offset(offset))).all()]


async def count_items(
    conn: AsyncConnection,
    *,
    run_id: str | None = None,
    state: ItemState | None = None,
    processor: str | None = None,
    open_only: bool = False,
) -> dict[str, int]:
    """{class: n} for the run's report (every item last seen by the run, whatever its state), or
    the queue (`open_only`: open and acknowledged)."""
    stmt = sa.select(recon_items.c.cls, sa.func.count()).group_by(recon_items.c.cls)
    if run_id is not None:
        stmt = stmt.where(recon_items.c.last_seen_run == run_id)
    if state is not None:
        stmt = stmt.where(recon_items.c.state == state.value)
    if processor is not None:
        stmt = stmt.where(recon_items.c.processor == processor)
    if open_only:
        stmt = stmt.where(recon_items.c.state.in_([ItemState.OPEN.value, ItemState.ACKNOWLEDGED.value]))
    return {str(r[0]): int(r[1]) for r in (await conn.execute(stmt)).all()}


async def transition_item(
    conn: AsyncConnection, iid: str, target: ItemState, *, reason: str, actor: str, now: datetime
) -> ReconItem:
    """open -> acknowledged -> resolved (or open -> resolved), with who and why; compare-and-set."""
    item = await get_item(conn, iid)
    if item.state is target:
        return item  # a repeated click, or a retried request: the same answer
    move_item(item.state, target)
    result = await conn.execute(
        recon_items.update()
        .where(recon_items.c.id == iid, recon_items.c.state == item.state.value)
        .values(state=target.value, reason=reason, actor=actor, state_at=now, updated_at=now)
    )
    if result.rowcount != 1:
        raise ConcurrentModification(f"reconciliation item {iid} was changed by someone else")
    return await get_item(conn, iid)


async def mark_healed(conn: AsyncConnection, iids: Sequence[str], *, run_id: str, now: datetime) -> int:
    """The run did what the item suggests (idempotent step): note it; the next re-check resolves it."""
    if not iids:
        return 0
    result = await conn.execute(
        recon_items.update()
        .where(recon_items.c.id.in_(list(iids)), recon_items.c.healed_at.is_(None))
        .values(healed_at=now, healed_by_run=run_id, updated_at=now)
    )
    return int(result.rowcount or 0)


def _this_pass(run_id: str, pass_no: int) -> sa.ColumnElement[bool]:
    """Items found (again) by this pass of this run."""
    return sa.and_(recon_items.c.last_seen_run == run_id, recon_items.c.last_seen_pass == pass_no)


async def healing_page(
    conn: AsyncConnection, *, run_id: str, pass_no: int, after: str, limit: int
) -> list[ReconItem]:
    """Open items this pass found whose suggested action the run takes itself and has not taken yet."""
    stmt = (
        sa.select(recon_items)
        .where(
            _this_pass(run_id, pass_no),
            recon_items.c.state == ItemState.OPEN.value,
            recon_items.c.healed_at.is_(None),
            recon_items.c.suggested_action.in_([a.value for a in HEALING]),
            recon_items.c.id > after,
        )
        .order_by(recon_items.c.id)
        .limit(limit)
    )
    return [_item(r) for r in (await conn.execute(stmt)).all()]


async def unseen_open_items(
    conn: AsyncConnection, *, processor: str, run_id: str, pass_no: int, after: str, limit: int
) -> list[ReconItem]:
    """Open or acknowledged items that this pass did not find again: candidates to resolve."""
    stmt = (
        sa.select(recon_items)
        .where(
            recon_items.c.processor == processor,
            recon_items.c.state.in_([ItemState.OPEN.value, ItemState.ACKNOWLEDGED.value]),
            sa.or_(recon_items.c.last_seen_run != run_id, recon_items.c.last_seen_pass != pass_no),
            recon_items.c.id > after,
        )
        .order_by(recon_items.c.id)
        .limit(limit)
    )
    return [_item(r) for r in (await conn.execute(stmt)).all()]


# --- staging ------------------------------------------------------------------------------------


def _upsert(conn: AsyncConnection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


async def stage(conn: AsyncConnection, run_id: str, kind: str, rows: Sequence[dict[str, Any]]) -> None:
    """Rows: {record_id, ledger_refund_id, idempotency_key, link, data}; a record read twice is written once."""
    if not rows:
        return
    insert = _upsert(conn)(recon_staged).values([{"run_id": run_id, "kind": kind, **r} for r in rows])
    stmt = insert.on_conflict_do_update(
        index_elements=["run_id", "kind", "record_id"],
        set_={
            "ledger_refund_id": insert.excluded.ledger_refund_id,
            "idempotency_key": insert.excluded.idempotency_key,
            "link": insert.excluded.link,
            "data": insert.excluded.data,
        },
    )
    await conn.execute(stmt)


async def staged_page(
    conn: AsyncConnection, run_id: str, kind: str, *, after: str, limit: int
) -> list[dict[str, Any]]:
    """The next page of staged records' data, in record id order."""
    stmt = (
        sa.select(recon_staged.c.record_id, recon_staged.c.data)
        .where(recon_staged.c.run_id == run_id, recon_staged.c.kind == kind, recon_staged.c.record_id > after)
        .order_by(recon_staged.c.record_id)
        .limit(limit)
    )
    return [dict(r.data) for r in (await conn.execute(stmt)).all()]


async def news_of_other_windows_page(conn: AsyncConnection, run_id: str, *, after: str, limit: int) -> list[str]:
    """The next page, in id order, of processor refunds this run's undelivered events or balance entries are
    about that it did not stage as refunds of its window: refunds made in an earlier window whose news
    (a failure days later, its credit) came in this one."""
    window_refunds = sa.select(recon_staged.c.record_id).where(
        recon_staged.c.run_id == run_id, recon_staged.c.kind == "refund"
    )
    stmt = (
        sa.select(recon_staged.c.link)
        .where(
            recon_staged.c.run_id == run_id,
            recon_staged.c.kind.in_(["event", "balance"]),
            recon_staged.c.link.is_not(None),
            recon_staged.c.link > after,
            recon_staged.c.link.not_in(window_refunds),
        )
        .group_by(recon_staged.c.link)
        .order_by(recon_staged.c.link)
        .limit(limit)
    )
    return [str(r.link) for r in (await conn.execute(stmt)).all()]


async def staged_by_link(conn: AsyncConnection, run_id: str, kind: str, links: Sequence[str]) -> list[dict[str, Any]]:
    if not links:
        return []
    stmt = sa.select(recon_staged.c.data).where(
        recon_staged.c.run_id == run_id, recon_staged.c.kind == kind, recon_staged.c.link.in_(list(links))
    )
    return [dict(r.data) for r in (await conn.execute(stmt)).all()]


async def staged_by_ledger(
    conn: AsyncConnection, run_id: str, ledger_refund_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """Staged processor refunds that name any of these ledger refunds in their metadata."""
    if not ledger_refund_ids:
        return []
    stmt = sa.select(recon_staged.c.data).where(
        recon_staged.c.run_id == run_id,
        recon_staged.c.kind == "refund",
        recon_staged.c.ledger_refund_id.in_(list(ledger_refund_ids)),
    )
    return [dict(r.data) for r in (await conn.execute(stmt)).all()]


async def staged_ids(conn: AsyncConnection, run_id: str, kind: str, record_ids: Sequence[str]) -> set[str]:
    if not record_ids:
        return set()
    stmt = sa.select(recon_staged.c.record_id).where(
        recon_staged.c.run_id == run_id, recon_staged.c.kind == kind, recon_staged.c.record_id.in_(list(record_ids))
    )
    return {str(r[0]) for r in (await conn.execute(stmt)).all()}


async def staged_by_ledger_ids(conn: AsyncConnection, run_id: str, ledger_refund_ids: Sequence[str]) -> set[str]:
    """Which of these ledger refunds a staged processor refund names."""
    if not ledger_refund_ids:
        return set()
    stmt = sa.select(recon_staged.c.ledger_refund_id).where(
        recon_staged.c.run_id == run_id,
        recon_staged.c.kind == "refund",
        recon_staged.c.ledger_refund_id.in_(list(ledger_refund_ids)),
    )
    return {str(r[0]) for r in (await conn.execute(stmt)).all()}


# Staged beside the records: ids of refunds to classify again at the end (their page disagreed when
# it was judged as it was staged). Not a processor record: never counted as staged.
RECHECK = "recheck"


async def mark(conn: AsyncConnection, run_id: str, kind: str, record_ids: Sequence[str]) -> None:
    """Stage bare ids under a marker kind (`RECHECK`, `ELSEWHERE`): notes of the run, not processor records."""
    await stage(
        conn, run_id, kind,
        [{"record_id": r, "ledger_refund_id": None, "idempotency_key": None, "link": None, "data": {}}
         for r in record_ids],
    )  # fmt: skip


async def staged_to_reclassify(
    conn: AsyncConnection, run_id: str, *, after: str, limit: int
) -> list[dict[str, Any]]:
    """Staged refunds, in record id order, that a judgement made while staging cannot stand for.

    Those marked for a re-check, and those that share a ledger key or a payment with another
    staged refund: their group may have grown after they were judged, so they are judged again,
    all together.
    """
    refund = sa.and_(recon_staged.c.run_id == run_id, recon_staged.c.kind == "refund")
    marked = sa.select(recon_staged.c.record_id).where(recon_staged.c.run_id == run_id, recon_staged.c.kind == RECHECK)
    shared_key = (
        sa.select(recon_staged.c.ledger_refund_id)
        .where(refund, recon_staged.c.ledger_refund_id.is_not(None))
        .group_by(recon_staged.c.ledger_refund_id)
        .having(sa.func.count() > 1)
    )
    shared_payment = (
        sa.select(recon_staged.c.link)
        .where(refund, recon_staged.c.link.is_not(None))
        .group_by(recon_staged.c.link)
        .having(sa.func.count() > 1)
    )
    stmt = (
        sa.select(recon_staged.c.data)
        .where(
            refund,
            recon_staged.c.record_id > after,
            sa.or_(
                recon_staged.c.record_id.in_(marked),
                recon_staged.c.ledger_refund_id.in_(shared_key),
                recon_staged.c.link.in_(shared_payment),
            ),
        )
        .order_by(recon_staged.c.record_id)
        .limit(limit)
    )
    return [dict(r.data) for r in (await conn.execute(stmt)).all()]


# Staged beside the records: ledger refunds created in this window whose processor refund the
# processor created in another window; their money counts there, on the processor's clock.
ELSEWHERE = "elsewhere"


async def staged_by_ids(
    conn: AsyncConnection, run_id: str, kind: str, record_ids: Sequence[str]
) -> list[dict[str, Any]]:
    if not record_ids:
        return []
    stmt = sa.select(recon_staged.c.data).where(
        recon_staged.c.run_id == run_id, recon_staged.c.kind == kind, recon_staged.c.record_id.in_(list(record_ids))
    )
    return [dict(r.data) for r in (await conn.execute(stmt)).all()]


def ids_of(conn: AsyncConnection, ids: Sequence[str]) -> sa.Select[Any]:
    """A list of ids as a subquery bound as one JSON parameter, however long the list: SQLite and
    asyncpg cap a statement near 32k parameters, and a window can list 100k processor refunds."""
    payload = sa.bindparam(None, json.dumps(list(ids)), type_=sa.Text)
    if conn.dialect.name == "postgresql":
        elements = sa.func.json_array_elements_text(sa.cast(payload, postgresql.JSON)).table_valued("value")
    else:
        elements = sa.func.json_each(payload).table_valued("value")
    return sa.select(elements.c.value)


def refunded_in_window(
    processor: Processor,
    window: ReconWindow,
    *,
    listed: sa.Select[Any],
    naming: sa.Select[Any],
    elsewhere: sa.Select[Any],
) -> sa.Subquery:
    """Ledger refunds whose money counts in this window's ledger total, on the processor refund's clock,
    as (id, processor_refund_id, currency, amount), each once.

    The one rule for reconciliation's totals and `ticketops audit`'s (`ticketing.reconciliation.totals`).
    Refunded by the processor (not by hand), and: its processor refund is one the processor made in
    the window (`listed`); or, with no processor refund id, one of those names it (`naming`); or the
    ledger made it in the window and its processor refund was not made in another window (`elsewhere`,
    see `counted_elsewhere`). A union of three lookups, so each walks its own index (the window's:
    `ix_refunds_processor_created_at`) instead of one scan filtering every refund through all three.
    """
    columns = (refunds.c.id, refunds.c.processor_refund_id, refunds.c.currency, refunds.c.amount)
    counted = (
        refunds.c.processor == processor.value,
        refunds.c.status == RefundStatus.SUCCEEDED.value,
        refunds.c.manual_reference.is_(None),
    )
    by_processor_id = sa.select(*columns).where(*counted, refunds.c.processor_refund_id.in_(listed))
    by_name = sa.select(*columns).where(
        *counted, refunds.c.processor_refund_id.is_(None), refunds.c.id.in_(naming)
    )
    by_ledger_clock = sa.select(*columns).where(
        *counted,
        refunds.c.created_at >= window.start,
        refunds.c.created_at < window.end,
        refunds.c.id.not_in(elsewhere),
    )
    return sa.union(by_processor_id, by_name, by_ledger_clock).subquery("counted")


def _window_refunded(run_id: str, processor: Processor, window: ReconWindow) -> sa.Subquery:
    """`refunded_in_window` with this run's staged processor refunds and its `ELSEWHERE` marks."""
    staged = sa.and_(recon_staged.c.run_id == run_id, recon_staged.c.kind == "refund")
    return refunded_in_window(
        processor,
        window,
        listed=sa.select(recon_staged.c.record_id).where(staged),
        naming=sa.select(recon_staged.c.ledger_refund_id).where(staged, recon_staged.c.ledger_refund_id.is_not(None)),
        elsewhere=sa.select(recon_staged.c.record_id).where(
            recon_staged.c.run_id == run_id, recon_staged.c.kind == ELSEWHERE
        ),
    )


async def refunded_totals(conn: AsyncConnection, counted: sa.Subquery) -> dict[str, int]:
    """{currency: minor units} of the ledger refunds a `refunded_in_window` counts."""
    stmt = sa.select(counted.c.currency, sa.func.sum(counted.c.amount)).group_by(counted.c.currency)
    return {str(r[0]): int(r[1] or 0) for r in (await conn.execute(stmt)).all()}


async def ledger_window_totals(
    conn: AsyncConnection, run_id: str, processor: Processor, window: ReconWindow
) -> dict[str, int]:
    """{currency: minor units} the ledger says the processor refunded in this window (see `_window_refunded`)."""
    return await refunded_totals(conn, _window_refunded(run_id, processor, window))


async def ledger_window_refunds(
    conn: AsyncConnection,
    run_id: str,
    processor: Processor,
    window: ReconWindow,
    *,
    refund_ids: Sequence[str],
    processor_refund_ids: Sequence[str],
) -> list[tuple[str, str | None, str, int]]:
    """(id, processor refund id, currency, amount) of the refunds counted in the window's ledger total
    that are among these, or whose processor refund is one of these, or is named by one in its metadata."""
    if not refund_ids and not processor_refund_ids:
        return []
    named = sa.select(recon_staged.c.ledger_refund_id).where(
        recon_staged.c.run_id == run_id,
        recon_staged.c.kind == "refund",
        recon_staged.c.record_id.in_(list(processor_refund_ids)),
        recon_staged.c.ledger_refund_id.is_not(None),
    )
    counted = _window_refunded(run_id, processor, window)
    stmt = sa.select(counted.c.id, counted.c.processor_refund_id, counted.c.currency, counted.c.amount).where(
        sa.or_(
            counted.c.id.in_(list(refund_ids)),
            counted.c.processor_refund_id.in_(list(processor_refund_ids)),
            counted.c.id.in_(named),
        ),
    )
    return [(str(r[0]), r[1], str(r[2]), int(r[3])) for r in (await conn.execute(stmt)).all()]


async def pass_items_page(
    conn: AsyncConnection, *, run_id: str, pass_no: int, after: str, limit: int
) -> list[ReconItem]:
    """Items this pass found, in id order."""
    stmt = (
        sa.select(recon_items)
        .where(_this_pass(run_id, pass_no), recon_items.c.id > after)
        .order_by(recon_items.c.id)
        .limit(limit)
    )
    return [_item(r) for r in (await conn.execute(stmt)).all()]


async def staged_counts(conn: AsyncConnection, run_id: str) -> dict[str, int]:
    stmt = (
        sa.select(recon_staged.c.kind, sa.func.count())
        .where(recon_staged.c.run_id == run_id, recon_staged.c.kind.not_in([RECHECK, ELSEWHERE]))
        .group_by(recon_staged.c.kind)
    )
    return {str(r[0]): int(r[1]) for r in (await conn.execute(stmt)).all()}


async def clear_staged(conn: AsyncConnection, run_id: str) -> None:
    await conn.execute(sa.delete(recon_staged).where(recon_staged.c.run_id == run_id))
