"""Ticket PDFs rendered when tickets are issued, on the `render` queue, so that their first delivery
finds them in the cache (`ticket_pdfs`) instead of rendering them between the sends.

Rendering is the CPU-bound part of a first delivery (several times an email's own cost); here it
runs when an import writes its orders, on workers of its own (and their rendering processes), off
the `email` queue's paced sends and the `orders` queue's workflow tasks. It fills the cache and
nothing else, so it is idempotent and can never be stale: the cache is keyed by each ticket's
document, and a ticket edited, reissued or moved afterwards is a new key that its next delivery
renders itself. For the same reason it must never hold up an import: a ticket that does not render
is logged and left to its delivery, and a blob store that is down only costs the head start.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from temporalio import activity

from activities.contracts import BatchCounts, BulkBatch
from activities.deps import Deps
from activities.errors import domain_errors
from documents.from_orders import ticket_document
from documents.models import TicketDocument
from ticketing.bulk import ItemStatus
from ticketing.states import OrderStatus
from ticketing.store.bulk import items_in_range
from ticketing.store.orders import load_event, load_orders, load_ticket_types, load_time_slots

log = structlog.get_logger(__name__)

# Documents per call to the cache: a heartbeat after each, and enough to keep every rendering process busy.
CHUNK = 64


class PrerenderActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="prerender_ticket_pdfs")
    @domain_errors
    async def prerender_ticket_pdfs(self, batch: BulkBatch) -> BatchCounts:
        """The valid tickets of a batch of imported orders, rendered into the cache. Counts nothing:
        the items stay as the import left them (the report counts orders, not renders)."""
        async with self.deps.store.read() as conn:
            items = await items_in_range(conn, batch.bulk_id, batch.first, batch.last, {ItemStatus.IMPORTED})
        docs = await self.documents([item.key for item in items])
        rendered = await self.render(docs)
        log.debug("prerender.batch_done", bulk_id=batch.bulk_id, tickets=len(docs), rendered=rendered)
        return BatchCounts()

    async def documents(self, order_codes: Sequence[str]) -> list[TicketDocument]:
        """The documents a delivery of these paid orders would attach (the same function builds both)."""
        docs: list[TicketDocument] = []
        async with self.deps.store.read() as conn:
            paid = [o for o in await load_orders(conn, order_codes) if o.status is OrderStatus.PAID]
            for event_id in sorted({o.event_id for o in paid}):
                event = await load_event(conn, event_id)
                types = {t.id: t for t in await load_ticket_types(conn, event_id)}
                slots = {s.id: s for s in await load_time_slots(conn, event_id)}
                docs.extend(
                    ticket_document(order, event, ticket, types, slots)
                    for order in paid
                    if order.event_id == event_id
                    for ticket in order.valid_tickets
                )
        return docs

    async def render(self, docs: Sequence[TicketDocument]) -> int:
        """Render what the cache lacks, a chunk at a time; how many were rendered."""
        pdfs = self.deps.ticket_pdfs()
        rendered = 0
        for start in range(0, len(docs), CHUNK):
            chunk = docs[start : start + CHUNK]
            try:
                rendered += await pdfs.ensure(chunk)
            except Exception as exc:  # one ticket that does not render must not cost the others theirs
                log.warning("prerender.chunk_failed", tickets=len(chunk), error=type(exc).__name__)
                rendered += await self._one_by_one(chunk)
            activity.heartbeat(start + len(chunk))
        return rendered

    async def _one_by_one(self, docs: Sequence[TicketDocument]) -> int:
        rendered = 0
        for doc in docs:
            try:
                rendered += await self.deps.ticket_pdfs().ensure([doc])
            except Exception as exc:  # its delivery renders it again, and fails visibly there if it must
                log.warning("prerender.ticket_failed", ticket_id=doc.ticket_id, error=type(exc).__name__)
        return rendered
