"""Figures read from the ledger when Prometheus scrapes the API: refunds, bulk emails, reconciliation.

Read at scrape time, not counted in process memory, so they are right whichever API or worker
process did the work, and survive restarts. Every query is an aggregate over indexed columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ticketing.bulk import ItemStatus
from ticketing.store.tables import UTCDateTime, bulk_items, refunds

# The reconciliation tables come with migration 0006; a database without them reports no items.
_recon_items = sa.table("recon_items", sa.column("cls", sa.String), sa.column("state", sa.String))
_recon_runs = sa.table(
    "recon_runs",
    sa.column("processor", sa.String),
    sa.column("status", sa.String),
    sa.column("dry_run", sa.Boolean),
    sa.column("ended_at", UTCDateTime),
)


@dataclass
class RefundFigures:
    count: int
    oldest_updated_at: datetime | None


@dataclass
class BusinessFigures:
    refunds: dict[str, RefundFigures] = field(default_factory=dict)  # by status
    submitted_by_processor: dict[str, int] = field(default_factory=dict)
    bulk_emails_sent: int = 0
    recon_available: bool = False
    recon_open_by_class: dict[str, int] = field(default_factory=dict)
    recon_last_run: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (processor, status)


async def read_business_figures(conn: AsyncConnection) -> BusinessFigures:
    figures = BusinessFigures()
    rows = await conn.execute(
        sa.select(refunds.c.status, sa.func.count(), sa.func.min(refunds.c.updated_at)).group_by(refunds.c.status)
    )
    for status, count, oldest in rows:
        figures.refunds[status] = RefundFigures(count, oldest)
    submitted = await conn.execute(
        sa.select(refunds.c.processor, sa.func.count())
        .where(refunds.c.processor_refund_id.is_not(None))
        .group_by(refunds.c.processor)
    )
    figures.submitted_by_processor = {processor: count for processor, count in submitted}
    figures.bulk_emails_sent = (
        await conn.scalar(sa.select(sa.func.count()).where(bulk_items.c.status == ItemStatus.SENT.value))
    ) or 0
    figures.recon_available = await conn.run_sync(lambda sync: sa.inspect(sync).has_table("recon_items"))
    if figures.recon_available:
        open_items = await conn.execute(
            sa.select(_recon_items.c.cls, sa.func.count())
            .where(_recon_items.c.state == "open")
            .group_by(_recon_items.c.cls)
        )
        figures.recon_open_by_class = {cls: count for cls, count in open_items}
        runs = await conn.execute(
            sa.select(_recon_runs.c.processor, _recon_runs.c.status, sa.func.max(_recon_runs.c.ended_at))
            .where(_recon_runs.c.ended_at.is_not(None), _recon_runs.c.dry_run.is_(False))
            .group_by(_recon_runs.c.processor, _recon_runs.c.status)
        )
        figures.recon_last_run = {(p, s): at for p, s, at in runs if at is not None}
    return figures
