"""Activities every bulk operation shares: materialise the item set, and finish with a report."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from temporalio import activity

from activities.contracts import BulkRange, BulkReport, FinishBulk, PrepareBulk
from activities.deps import Deps
from activities.errors import domain_errors
from ticketing.bulk import BulkKind, BulkStatus, ItemStatus, Selection
from ticketing.store.bulk import (
    copy_retryable,
    create_bulk,
    fail_deferred,
    item_range,
    iter_items,
    load_bulk,
    mark_event_cancelled,
    mark_pending_as,
    mark_time_slot_cancelled,
    select_orders,
    select_recipients,
    set_bulk,
    status_counts,
)
from ticketing.store.deliveries import DeliveryStatus, close_open_deliveries


class BulkActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="prepare_bulk")
    @domain_errors
    async def prepare_bulk(self, req: PrepareBulk) -> BulkRange:
        """Create the operation and its items once; a retry finds them and reports the same range."""
        selection = Selection.model_validate(req.selection)
        async with self.deps.store.transaction() as conn:
            await create_bulk(
                conn,
                bulk_id=req.bulk_id,
                kind=req.kind,
                event_id=req.event_id,
                workflow_id=req.workflow_id,
                params={"selection": req.selection, **req.params},
                created_by=req.actor,
                retry_of=req.retry_of,
            )
            bulk = await load_bulk(conn, req.bulk_id)
            if bulk.prepared_at is None:
                # First: from here on no transfer of these tickets is opened or accepted (it waits for
                # this commit, or sees it), so every recipient's order that exists is among the orders
                # chosen below, and every open transfer of them is there to be closed before refunds.
                if req.kind == BulkKind.EVENT_CANCELLATION and selection.time_slot_id is None:
                    await mark_event_cancelled(conn, req.event_id)
                elif req.kind == BulkKind.EVENT_CANCELLATION and selection.time_slot_id is not None:
                    await mark_time_slot_cancelled(conn, req.event_id, selection.time_slot_id)
                if req.retry_of:
                    await copy_retryable(conn, req.bulk_id, req.retry_of)
                elif req.kind == BulkKind.DELIVERY:
                    await select_recipients(conn, req.bulk_id, selection)
                else:
                    await select_orders(conn, req.bulk_id, selection)
                await set_bulk(conn, req.bulk_id, status=BulkStatus.RUNNING.value, prepared_at=datetime.now(UTC))
            first, last, total = await item_range(conn, req.bulk_id)
        return BulkRange(first=first, last=last, total=total)

    @activity.defn(name="set_bulk_status")
    async def set_bulk_status(self, req: FinishBulk) -> None:
        async with self.deps.store.transaction() as conn:
            await set_bulk(conn, req.bulk_id, status=req.status)

    @activity.defn(name="finish_bulk")
    @domain_errors
    async def finish_bulk(self, req: FinishBulk) -> BulkReport:
        """Close the operation: what was not reached is skipped, and the CSV report goes to blob storage."""
        async with self.deps.store.transaction() as conn:
            if req.status == BulkStatus.CANCELLED:
                await mark_pending_as(conn, req.bulk_id, ItemStatus.SKIPPED, "cancelled-by-operator")
            await fail_deferred(conn, req.bulk_id)
            # The delivery log follows its items: nothing this operation claimed stays open.
            await close_open_deliveries(
                conn, DeliveryStatus.FAILED, "still deferred after every retry",
                workflow_id=req.bulk_id, only=DeliveryStatus.DEFERRED,
            )
            await close_open_deliveries(
                conn, DeliveryStatus.SKIPPED, f"not sent: the operation ended {req.status}", workflow_id=req.bulk_id
            )
            counts = await status_counts(conn, req.bulk_id)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["item", "recipient_or_order", "status", "reason", "message_id", "refund_id"])
        async with self.deps.store.transaction() as conn:
            async for row in iter_items(conn, req.bulk_id):
                writer.writerow(
                    [row.id, row.key, row.status, row.reason or "", row.message_id or "", row.refund_id or ""]
                )
        uri = await self.deps.blob_store().put(
            f"reports/{req.bulk_id.replace('/', '_')}.csv", buffer.getvalue().encode(), "text/csv"
        )
        async with self.deps.store.transaction() as conn:
            await set_bulk(conn, req.bulk_id, status=req.status, counts=counts, report_uri=uri)
        return BulkReport(bulk_id=req.bulk_id, status=req.status, counts=counts, report_uri=uri)
