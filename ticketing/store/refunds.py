"""The refund ledger: one row per refund, updated only through `move_refund`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.bulk import ItemStatus
from ticketing.errors import ConcurrentModification, NotFound
from ticketing.models import Processor, Refund, RefundKind
from ticketing.money import Money
from ticketing.states import RefundStatus
from ticketing.store.bulk import in_range
from ticketing.store.tables import bulk_items, orders, refunds


def _row(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.id,
        "order_code": refund.order_code,
        "kind": refund.kind.value,
        "amount": refund.amount.amount,
        "currency": refund.amount.currency,
        "ticket_ids": refund.ticket_ids,
        "fees_kept": refund.fees_kept.amount,
        "reason": refund.reason,
        "status": refund.status.value,
        "processor": refund.processor.value,
        "workflow_id": refund.workflow_id,
        "attempt": refund.attempt,
        "processor_refund_id": refund.processor_refund_id,
        "failure_reason": refund.failure_reason,
        "manual_reference": refund.manual_reference,
        "requested_by": refund.requested_by,
        "approved_by": refund.approved_by,
        "confirmed_by": refund.confirmed_by,
        "created_at": refund.created_at,
        "updated_at": refund.updated_at,
    }


def _from_row(r: Any) -> Refund:
    return Refund(
        id=r.id,
        order_code=r.order_code,
        kind=RefundKind(r.kind),
        amount=Money(amount=r.amount, currency=r.currency),
        ticket_ids=list(r.ticket_ids),
        fees_kept=Money(amount=r.fees_kept, currency=r.currency),
        reason=r.reason,
        status=RefundStatus(r.status),
        processor=Processor(r.processor),
        workflow_id=r.workflow_id,
        attempt=r.attempt,
        processor_refund_id=r.processor_refund_id,
        failure_reason=r.failure_reason,
        manual_reference=r.manual_reference,
        requested_by=r.requested_by,
        approved_by=r.approved_by,
        confirmed_by=r.confirmed_by,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


# The auditor's reads (ticketing/store/audit.py) build refunds from their rows the same way.
refund_from_row = _from_row


async def insert_refund(conn: AsyncConnection, refund: Refund) -> None:
    await conn.execute(refunds.insert().values(**_row(refund)))


async def load_refund(conn: AsyncConnection, refund_id: str) -> Refund:
    row = (await conn.execute(sa.select(refunds).where(refunds.c.id == refund_id))).first()
    if row is None:
        raise NotFound(f"refund {refund_id} does not exist", type="refund-not-found")
    return _from_row(row)


async def find_refund_by_workflow(conn: AsyncConnection, workflow_id: str) -> Refund | None:
    row = (await conn.execute(sa.select(refunds).where(refunds.c.workflow_id == workflow_id))).first()
    return _from_row(row) if row else None


async def find_refunds_by_workflows(conn: AsyncConnection, workflow_ids: Sequence[str]) -> dict[str, Refund]:
    """The refunds opened under any of these workflow ids, by workflow id, in one query."""
    if not workflow_ids:
        return {}
    rows = (await conn.execute(sa.select(refunds).where(refunds.c.workflow_id.in_(list(workflow_ids))))).all()
    return {r.workflow_id: _from_row(r) for r in rows}


async def find_refund_by_processor_id(conn: AsyncConnection, processor_refund_id: str) -> Refund | None:
    row = (await conn.execute(sa.select(refunds).where(refunds.c.processor_refund_id == processor_refund_id))).first()
    return _from_row(row) if row else None


async def update_refund(conn: AsyncConnection, before: Refund, after: Refund) -> Refund:
    """Compare-and-set on status and attempt, so two writers cannot both move a refund."""
    result = await conn.execute(
        refunds.update()
        .where(
            refunds.c.id == before.id,
            refunds.c.status == before.status.value,
            refunds.c.attempt == before.attempt,
        )
        .values(**_row(after))
    )
    if result.rowcount != 1:
        raise ConcurrentModification(f"refund {before.id} was changed by someone else")
    return after


async def list_refunds(
    conn: AsyncConnection,
    *,
    status: RefundStatus | None = None,
    event_id: str | None = None,
    order_code: str | None = None,
    updated_since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Refund]:
    stmt = sa.select(refunds).order_by(refunds.c.created_at.desc(), refunds.c.id)
    if status:
        stmt = stmt.where(refunds.c.status == status.value)
    if order_code:
        stmt = stmt.where(refunds.c.order_code == order_code)
    if event_id:
        stmt = stmt.where(refunds.c.order_code.in_(sa.select(orders.c.code).where(orders.c.event_id == event_id)))
    if updated_since:
        stmt = stmt.where(refunds.c.updated_at >= updated_since)
    rows = (await conn.execute(stmt.limit(limit).offset(offset))).all()
    return [_from_row(r) for r in rows]


async def refund_items_in_range(
    conn: AsyncConnection, bulk_id: str, first: int, last: int, statuses: set[ItemStatus]
) -> list[tuple[str, str, str, Money, int, str]]:
    """(refund id, order code, workflow id, amount, tickets, kind) of the range's items in these states, by id."""
    stmt = (
        sa.select(
            refunds.c.id, refunds.c.order_code, refunds.c.workflow_id, refunds.c.amount, refunds.c.currency,
            refunds.c.ticket_ids, refunds.c.kind,
        )
        .select_from(bulk_items.join(refunds, refunds.c.id == bulk_items.c.refund_id))
        .where(in_range(bulk_id, first, last, statuses))
        .order_by(bulk_items.c.id)
    )
    return [
        (r.id, r.order_code, r.workflow_id, Money(amount=r.amount, currency=r.currency), len(r.ticket_ids), r.kind)
        for r in (await conn.execute(stmt)).all()
    ]


# --- reads for reconciliation -------------------------------------------------------------------

NON_FINAL = (
    RefundStatus.REQUESTED,
    RefundStatus.AWAITING_APPROVAL,
    RefundStatus.AWAITING_MANUAL,
    RefundStatus.REFUNDING,
    RefundStatus.CONFIRMING,
)


async def refunds_by_ids(conn: AsyncConnection, refund_ids: Sequence[str]) -> dict[str, Refund]:
    if not refund_ids:
        return {}
    rows = (await conn.execute(sa.select(refunds).where(refunds.c.id.in_(list(refund_ids))))).all()
    return {r.id: _from_row(r) for r in rows}


async def refunds_by_processor_ids(conn: AsyncConnection, processor_refund_ids: Sequence[str]) -> dict[str, Refund]:
    """Ledger refunds by the processor refund id they recorded (a refund without our metadata)."""
    if not processor_refund_ids:
        return {}
    rows = (
        await conn.execute(
            sa.select(refunds).where(refunds.c.processor_refund_id.in_(list(processor_refund_ids)))
        )
    ).all()
    return {r.processor_refund_id: _from_row(r) for r in rows}


async def processor_paid_refunds(conn: AsyncConnection, order_codes: Sequence[str]) -> list[tuple[str, str, int]]:
    """(order code, processor refund id, amount) of every refund the processor paid or is paying on
    these orders, as the ledger has them (finance's payouts by hand are not the processor's)."""
    if not order_codes:
        return []
    # Status and manual reference are filtered here, not in SQL: with a status in the WHERE, SQLite's
    # planner walks the status index (every refunded refund, per call) instead of the order codes'.
    stmt = sa.select(
        refunds.c.order_code, refunds.c.processor_refund_id, refunds.c.amount, refunds.c.status,
        refunds.c.manual_reference,
    ).where(refunds.c.order_code.in_(list(order_codes)), refunds.c.processor_refund_id.is_not(None))
    paying = (RefundStatus.SUCCEEDED.value, RefundStatus.CONFIRMING.value)
    return [
        (str(r.order_code), str(r.processor_refund_id), int(r.amount))
        for r in (await conn.execute(stmt)).all()
        if r.status in paying and r.manual_reference is None
    ]


def _window_or_waiting(processor: Processor, start: datetime, end: datetime) -> sa.ColumnElement[bool]:
    """Refunds created in `[start, end)`, and refunds created before `start` that still wait."""
    return sa.and_(
        refunds.c.processor == processor.value,
        sa.or_(
            sa.and_(refunds.c.created_at >= start, refunds.c.created_at < end),
            sa.and_(refunds.c.created_at < start, refunds.c.status.in_([s.value for s in NON_FINAL])),
        ),
    )


async def ledger_refund_ids_page(
    conn: AsyncConnection, processor: Processor, start: datetime, end: datetime, *, after: str, limit: int
) -> list[tuple[str, str | None]]:
    """The ledger's side of a window, as (refund id, processor refund id) in id order: its refunds,
    plus older ones still waiting."""
    stmt = (
        sa.select(refunds.c.id, refunds.c.processor_refund_id)
        .where(_window_or_waiting(processor, start, end), refunds.c.id > after)
        .order_by(refunds.c.id)
        .limit(limit)
    )
    return [(str(r[0]), r[1]) for r in (await conn.execute(stmt)).all()]


async def order_codes_by_payment(conn: AsyncConnection, payment_references: Sequence[str]) -> dict[str, str]:
    """Which of these processor payments are ours: {payment reference: order code}."""
    if not payment_references:
        return {}
    rows = (
        await conn.execute(
            sa.select(orders.c.payment_reference, orders.c.code).where(
                orders.c.payment_reference.in_(list(payment_references))
            )
        )
    ).all()
    return {str(r[0]): str(r[1]) for r in rows}
