"""Import batches: write staged orders on `orders`, then (optionally) deliver their tickets on `email`.

Both are idempotent per item: a batch works only on the items still in the state it takes
(pending to import, imported to deliver), and the delivery log sends each order's email once.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import BatchCounts, BulkBatch, DeliverTickets
from activities.delivery import DeliveryActivities
from activities.deps import Deps
from activities.errors import domain_errors
from activities.pacing import Pacer
from ticketing.bulk import ItemStatus
from ticketing.errors import DomainError
from ticketing.states import OrderStatus
from ticketing.store.bulk import ItemMark, items_in_range, mark_items
from ticketing.store.importing import write_staged
from ticketing.store.orders import load_order


class ImportActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="import_batch")
    @domain_errors
    async def import_batch(self, req: BulkBatch) -> BatchCounts:
        return BatchCounts(counts=await write_staged(self.deps.store, req.bulk_id, req.first, req.last))


class ImportDeliveryActivities(DeliveryActivities):
    @activity.defn(name="deliver_import_batch")
    @domain_errors
    async def deliver_import_batch(self, req: BulkBatch) -> BatchCounts:
        """Each imported order's tickets to its contact, paced at the batch's share of the rate."""
        async with self.deps.store.transaction() as conn:
            items = await items_in_range(conn, req.bulk_id, req.first, req.last, {ItemStatus.IMPORTED})
        pacer = Pacer(req.rate)
        counts: dict[str, int] = {}
        for item in items:
            activity.heartbeat(item.id)
            async with self.deps.store.transaction() as conn:
                order = await load_order(conn, item.key)
            mark: ItemMark
            if order.status is not OrderStatus.PAID:
                mark = ItemMark(item.id, ItemStatus.SKIPPED, f"order-{order.status.value}")
            else:
                await pacer.wait()
                try:
                    sent = await self.deliver_tickets(
                        DeliverTickets(
                            order_code=order.code,
                            ticket_ids=[t.id for t in order.valid_tickets],
                            operation_id=f"{req.bulk_id}/deliver",
                            actor="import",
                            history_type="tickets-sent",
                        )
                    )
                    mark = ItemMark(item.id, ItemStatus.SENT, None, sent.message_id)
                except (ApplicationError, DomainError) as refused:
                    if isinstance(refused, ApplicationError) and not refused.non_retryable:
                        raise
                    mark = ItemMark(item.id, ItemStatus.FAILED, getattr(refused, "type", None) or str(refused))
            async with self.deps.store.transaction() as conn:
                await mark_items(conn, [mark])
            counts[mark.status.value] = counts.get(mark.status.value, 0) + 1
        return BatchCounts(counts=counts)
