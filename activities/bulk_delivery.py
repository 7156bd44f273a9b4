"""Bulk delivery: many recipients per activity, each sent at most once.

Per recipient, the delivery log is claimed, the email sent, and the log, the
item and every merged order's history are marked in one transaction. A batch
retried after a crash skips what its items say was sent; the Message-ID is
stable per (bulk, recipient), so the one window (sent, not yet recorded) is
recognisable downstream.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

import structlog
from temporalio import activity

from activities.contracts import BatchCounts, BulkBatch
from activities.deps import Deps
from activities.errors import domain_errors
from activities.pacing import Pacer
from activities.ticket_documents import ticket_document
from documents.email_templates import render_email
from documents.ticket_pdf import render_ticket_pdf
from email_providers.base import Attachment, OutgoingEmail, PermanentEmailError, TransientEmailError
from ticketing.bulk import ItemStatus, Selection
from ticketing.models import OrderEvent
from ticketing.store.bulk import items_in_range, load_bulk, mark_item, recipient_orders
from ticketing.store.deliveries import DeliveryStatus, claim_delivery, mark_delivery
from ticketing.store.orders import append_history, load_event, load_orders, load_ticket_types, load_time_slots

log = structlog.get_logger(__name__)


def bulk_message_id(bulk_id: str, key: str, template: str) -> str:
    digest = hashlib.sha256(f"bulk|{bulk_id}|{key}|{template}".encode()).hexdigest()
    return f"{digest[:40]}@ticketops"


class BulkDeliveryActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="deliver_bulk_batch")
    @domain_errors
    async def deliver_bulk_batch(self, batch: BulkBatch) -> BatchCounts:
        store = self.deps.store
        async with store.transaction() as conn:
            bulk = await load_bulk(conn, batch.bulk_id)
            items = await items_in_range(conn, batch.bulk_id, batch.first, batch.last, {ItemStatus.PENDING})
            event = await load_event(conn, bulk.event_id)
            types = {t.id: t for t in await load_ticket_types(conn, event.id)}
            slots = {s.id: s for s in await load_time_slots(conn, event.id)}
        params: dict[str, Any] = dict(bulk.params)
        selection = Selection.model_validate(params["selection"])
        pacer = Pacer(batch.rate)
        counts: dict[str, int] = {}
        for done, item in enumerate(items):
            activity.heartbeat(done)
            await pacer.wait()
            status = await self._deliver_one(batch.bulk_id, item, selection, params, event, types, slots)
            counts[status] = counts.get(status, 0) + 1
        return BatchCounts(counts=counts)

    async def _deliver_one(
        self, bulk_id: str, item: Any, selection: Selection, params: dict[str, Any], event: Any, types: Any, slots: Any
    ) -> str:
        store = self.deps.store
        template = str(params.get("template", "tickets"))
        mid = bulk_message_id(bulk_id, item.key, template)
        async with store.transaction() as conn:
            wanted = await recipient_orders(conn, selection, item.key)
            found = await load_orders(conn, list(wanted))
            prior = await claim_delivery(
                conn,
                message_id=mid,
                order_code=None,
                workflow_id=bulk_id,
                kind=f"bulk-{template}",
                provider=self.deps.email.name,
            )
            if prior is DeliveryStatus.SENT:
                await mark_item(conn, item.id, ItemStatus.SENT, message_id=mid)
                return ItemStatus.SENT.value
            if not found:
                await mark_item(conn, item.id, ItemStatus.SKIPPED, reason="no-valid-tickets-any-more")
                return ItemStatus.SKIPPED.value
        tickets = [(o, o.ticket(t)) for o in found for t in wanted[o.code]]
        tickets = [(o, t) for o, t in tickets if t.is_valid]
        first = found[0]
        name = (
            first.contact.name
            if selection.audience.value == "buyers"
            else (
                tickets[0][1].personalisation.name if tickets and tickets[0][1].personalisation else first.contact.name
            )
        )
        codes = ", ".join(o.code for o in found)
        attachments: list[Attachment] = []
        if template == "tickets":
            docs = [ticket_document(o, event, t, types, slots) for o, t in tickets]
            pdfs = await asyncio.to_thread(lambda: [render_ticket_pdf(d) for d in docs])
            attachments = [
                Attachment(filename=f"ticket-{d.ticket_id}.pdf", content_type="application/pdf", data=pdf)
                for d, pdf in zip(docs, pdfs, strict=True)
            ]
            rendered = render_email(
                "tickets",
                {
                    "event_name": event.name,
                    "event_starts_at": event.starts_at,
                    "venue": event.venue,
                    "order_code": codes,
                    "buyer_name": name,
                    "tickets": [d.model_dump() for d in docs],
                },
            )
        else:
            rendered = render_email(
                "custom_message",
                {
                    "subject": params.get("subject", ""),
                    "body": params.get("body", ""),
                    "buyer_name": name,
                    "order_code": codes,
                },
            )
        email = OutgoingEmail(
            message_id=mid,
            sender=self.deps.settings.email.sender,
            to=[item.key],
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            attachments=attachments,
        )
        try:
            await self.deps.email.send(email)
        except PermanentEmailError as err:
            async with store.transaction() as conn:
                await mark_delivery(conn, mid, DeliveryStatus.FAILED, str(err))
                await mark_item(conn, item.id, ItemStatus.FAILED, reason=str(err)[:500], message_id=mid)
            return ItemStatus.FAILED.value
        except TransientEmailError as err:
            async with store.transaction() as conn:
                await mark_delivery(conn, mid, DeliveryStatus.QUEUED, str(err))
            raise
        now = datetime.now(UTC)
        async with store.transaction() as conn:
            await mark_delivery(conn, mid, DeliveryStatus.SENT)
            await mark_item(conn, item.id, ItemStatus.SENT, message_id=mid)
            for order in found:
                await append_history(
                    conn,
                    order.code,
                    [
                        OrderEvent(
                            type="bulk-delivery-sent",
                            actor=str(params.get("actor", "ticketops")),
                            at=now,
                            data={"bulk_id": bulk_id, "template": template, "message_id": mid},
                            dedupe_key=f"bulk-delivery-sent:{mid}:{order.code}",
                        )
                    ],
                )
        return ItemStatus.SENT.value
