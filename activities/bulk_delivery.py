"""Bulk delivery: many recipients per activity, each sent at most once.

A batch reads its items, their orders and the delivery log in one transaction, and
claims the log rows of everyone it will write to in a second one (recipients the log
says have their email are marked sent, recipients left without a valid ticket are
skipped). Then up to `bulk.batch_concurrency` emails are in flight at once, paced at
the batch's share of the rate limit; ticket PDFs come from the render cache. Each
email is recorded (log, item, every merged order's history) before its send counts
as done, and records that arrive together share a transaction (`GroupCommit`).

A recipient whose server answers "later" (a 4xx to RCPT: greylisting, a full
mailbox) is marked deferred and the batch goes on; the engine passes over deferred
recipients again after a doubling wait, and fails those still refused at the end. A
relay that is down fails the batch instead: nothing new starts, and Temporal retries it.

A batch retried after a crash skips what its items and the log say was sent. The
Message-ID is stable per (bulk, recipient), so the one window left (the server
accepted, the worker died before the commit: at most one email per sender in flight)
is recognisable downstream. The orders are read once per batch: a ticket reissued
while its batch is sending can still go out with the barcode it had a moment before,
as it could with any read before a send; the reissue delivers the new one itself.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio import activity

from activities.contracts import BatchCounts, BulkBatch
from activities.deps import Deps
from activities.errors import domain_errors
from activities.heartbeats import Heartbeat
from activities.pacing import Pacer
from documents.branding import event_branding, reply_headers, sender_mailbox
from documents.email_templates import render_email
from documents.from_orders import ticket_document, tickets_email_context
from documents.models import TicketDocument
from email_providers.base import Attachment, OutgoingEmail, PermanentEmailError, TransientEmailError
from ticketing.bulk import Audience, ItemStatus, Selection
from ticketing.models import Event, Order, OrderEvent, Ticket, TicketType, TimeSlot
from ticketing.store.bulk import ItemMark, items_in_range, load_bulk, mark_items, recipients_orders
from ticketing.store.deliveries import (
    DeliveryClaim,
    DeliveryStatus,
    claim_deliveries,
    close_open_deliveries,
    mark_deliveries,
)
from ticketing.store.group_commit import GroupCommit
from ticketing.store.orders import append_histories, load_event, load_orders, load_ticket_types, load_time_slots

log = structlog.get_logger(__name__)


# Records wait this long for others to share their transaction. Sends do not wait for it (a
# send's connection is free again before its record is written), so it costs no throughput.
LINGER = 0.005

NOTHING_LEFT = "no-valid-tickets-any-more"


def bulk_message_id(bulk_id: str, key: str, template: str) -> str:
    digest = hashlib.sha256(f"bulk|{bulk_id}|{key}|{template}".encode()).hexdigest()
    return f"{digest[:40]}@ticketops"


@dataclass(frozen=True)
class _Batch:
    """What one batch read: the operation's parameters, the event, and each pending recipient's orders."""

    bulk_id: str
    selection: Selection
    params: dict[str, Any]
    template: str
    event: Event
    types: dict[str, TicketType]
    slots: dict[str, TimeSlot]
    items: list[Any]
    wanted: dict[str, dict[str, list[str]]]  # recipient -> order code -> ticket ids
    orders: dict[str, Order]


@dataclass(frozen=True)
class _Recipient:
    item_id: int
    key: str
    message_id: str
    orders: list[Order]
    ticket_ids: dict[str, list[str]]
    was_deferred: bool  # a retry pass: its earlier "deferred" leaves the counts when it resolves


@dataclass(frozen=True)
class _Record:
    """One send's outcome, written by the group commit."""

    message_id: str
    delivery: DeliveryStatus
    reason: str | None
    item: ItemMark | None
    history: tuple[tuple[str, OrderEvent], ...] = ()


async def _write_records(conn: AsyncConnection, records: Sequence[_Record]) -> None:
    await mark_deliveries(conn, [(r.message_id, r.delivery, r.reason) for r in records])
    await mark_items(conn, [r.item for r in records if r.item is not None])
    await append_histories(conn, [entry for r in records for entry in r.history])


def _counts(counts: Counter[str]) -> BatchCounts:
    """Zero entries left out: a retry pass's -1 "deferred" and +1 "sent" may cancel out."""
    return BatchCounts(counts={k: v for k, v in counts.items() if v})


class BulkDeliveryActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        # One per worker process: the batches running side by side share each transaction too,
        # instead of queueing for the store's write lock with one writer each.
        self.commits: GroupCommit[_Record] = GroupCommit(deps.store, _write_records, linger=LINGER)

    @activity.defn(name="deliver_bulk_batch")
    @domain_errors
    async def deliver_bulk_batch(self, batch: BulkBatch) -> BatchCounts:
        loaded = await self._load(batch)
        counts: Counter[str] = Counter()
        recipients = await self._claim(loaded, counts)
        if not recipients:
            return _counts(counts)
        tickets = {r.item_id: self._tickets(loaded, r) for r in recipients}
        pdfs: dict[str, bytes] = {}
        if loaded.template == "tickets":  # the whole batch's PDFs in one read of the cache
            docs = [doc for found in tickets.values() for _, doc in found]
            pdfs = {doc.ticket_id: pdf for doc, pdf in zip(docs, await self.deps.ticket_pdfs().get(docs), strict=True)}
        pacer = Pacer(batch.rate)
        commits = self.commits
        transactions_before = commits.transactions
        in_flight = asyncio.Semaphore(self.deps.settings.bulk.batch_concurrency)
        stop = asyncio.Event()  # set by a transient failure: what has not started waits for the retry
        beat = Heartbeat()

        async def one(recipient: _Recipient) -> None:
            async with in_flight:
                if stop.is_set():
                    return
                await pacer.wait()
                if stop.is_set():
                    return
                try:
                    status = await self._send(loaded, recipient, tickets[recipient.item_id], pdfs, commits)
                except TransientEmailError:
                    stop.set()
                    raise
                counts[status] += 1
                if recipient.was_deferred:
                    counts[ItemStatus.DEFERRED.value] -= 1
                beat(sum(counts.values()))

        results = await asyncio.gather(*(one(r) for r in recipients), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        used = commits.transactions - transactions_before
        log.debug("bulk.batch_done", bulk_id=batch.bulk_id, counts=dict(counts), transactions=used)
        return _counts(counts)

    async def _load(self, batch: BulkBatch) -> _Batch:
        async with self.deps.store.read() as conn:
            bulk = await load_bulk(conn, batch.bulk_id)
            params: dict[str, Any] = dict(bulk.params)
            selection = Selection.model_validate(params["selection"])
            wanted_states = {ItemStatus.PENDING, ItemStatus.DEFERRED}
            items = await items_in_range(conn, batch.bulk_id, batch.first, batch.last, wanted_states)
            event = await load_event(conn, bulk.event_id)
            types = {t.id: t for t in await load_ticket_types(conn, event.id)}
            slots = {s.id: s for s in await load_time_slots(conn, event.id)}
            wanted = await recipients_orders(conn, selection, [item.key for item in items])
            codes = sorted({code for found in wanted.values() for code in found})
            orders = {o.code: o for o in await load_orders(conn, codes)}
        return _Batch(
            bulk_id=batch.bulk_id,
            selection=selection,
            params=params,
            template=str(params.get("template", "tickets")),
            event=event,
            types=types,
            slots=slots,
            items=items,
            wanted=wanted,
            orders=orders,
        )

    async def _claim(self, loaded: _Batch, counts: Counter[str]) -> list[_Recipient]:
        """Mark what needs no email, claim the log for the rest; return the recipients to send to."""
        candidates: list[_Recipient] = []
        marks: list[ItemMark] = []
        for item in loaded.items:
            wanted = loaded.wanted.get(item.key, {})
            found = [loaded.orders[code] for code in wanted if code in loaded.orders]
            mid = bulk_message_id(loaded.bulk_id, item.key, loaded.template)
            deferred = item.status == ItemStatus.DEFERRED.value
            candidates.append(_Recipient(item.id, item.key, mid, found, wanted, deferred))
        async with self.deps.store.transaction() as conn:
            sendable = [r for r in candidates if r.orders]
            prior = await claim_deliveries(
                conn,
                [
                    DeliveryClaim(r.message_id, None, loaded.bulk_id, f"bulk-{loaded.template}", self.deps.email.name)
                    for r in sendable
                ],
            )
            for r in candidates:
                if prior.get(r.message_id) is DeliveryStatus.SENT:
                    marks.append(ItemMark(r.item_id, ItemStatus.SENT, message_id=r.message_id))
                elif not r.orders:
                    marks.append(ItemMark(r.item_id, ItemStatus.SKIPPED, reason=NOTHING_LEFT))
            # An earlier attempt may have claimed a recipient whose tickets are gone now: close its row.
            gone = [r.message_id for r in candidates if not r.orders]
            await close_open_deliveries(conn, DeliveryStatus.SKIPPED, NOTHING_LEFT, message_ids=gone)
            await mark_items(conn, marks)
        counts.update(m.status.value for m in marks)
        done = {m.item_id for m in marks}
        counts[ItemStatus.DEFERRED.value] -= sum(1 for r in candidates if r.was_deferred and r.item_id in done)
        return [r for r in sendable if r.item_id not in done]

    @staticmethod
    def _tickets(loaded: _Batch, recipient: _Recipient) -> list[tuple[Ticket, TicketDocument]]:
        """The recipient's tickets that are still valid, with their documents."""
        return [
            (ticket, ticket_document(order, loaded.event, ticket, loaded.types, loaded.slots))
            for order in recipient.orders
            for ticket in (order.ticket(t) for t in recipient.ticket_ids[order.code])
            if ticket.is_valid
        ]

    def _build(
        self,
        loaded: _Batch,
        recipient: _Recipient,
        tickets: list[tuple[Ticket, TicketDocument]],
        pdfs: dict[str, bytes],
    ) -> OutgoingEmail:
        name = recipient.orders[0].contact.name
        if loaded.selection.audience is Audience.ATTENDEES and tickets and tickets[0][0].personalisation:
            name = tickets[0][0].personalisation.name
        codes = ", ".join(o.code for o in recipient.orders)
        attachments: list[Attachment] = []
        context: dict[str, object]
        event = loaded.event
        if loaded.template == "tickets":
            docs = [doc for _, doc in tickets]
            attachments = [
                Attachment(
                    filename=f"ticket-{d.ticket_code}.pdf", content_type="application/pdf", data=pdfs[d.ticket_id]
                )
                for d in docs
            ]
            template, context = "tickets", tickets_email_context(event, codes, name, docs)
        else:
            template = "custom_message"
            context = {
                "subject": loaded.params.get("subject", ""),
                "body": loaded.params.get("body", ""),
                "buyer_name": name,
                "order_code": codes,
                "event_name": event.name,
                "event_starts_at": _when(event, [doc for _, doc in tickets]),
            }
        brand = event_branding(event, self.deps.settings.email)
        rendered = render_email(template, context, brand)
        return OutgoingEmail(
            message_id=recipient.message_id,
            sender=sender_mailbox(brand, self.deps.settings.email.sender),
            to=[recipient.key],
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            attachments=attachments,
            headers=reply_headers(brand),
        )

    async def _send(
        self,
        loaded: _Batch,
        recipient: _Recipient,
        tickets: list[tuple[Ticket, TicketDocument]],
        pdfs: dict[str, bytes],
        commits: GroupCommit[_Record],
    ) -> str:
        mid = recipient.message_id
        email = self._build(loaded, recipient, tickets, pdfs)
        try:
            await self.deps.email.send(email)
        except PermanentEmailError as err:
            reason = str(err)[:500]
            await commits.record(
                _Record(mid, DeliveryStatus.FAILED, reason, ItemMark(recipient.item_id, ItemStatus.FAILED, reason, mid))
            )
            return ItemStatus.FAILED.value
        except TransientEmailError as err:
            reason = str(err)[:500]
            if err.recipient:  # this mailbox only: the others go on, this one waits for a retry pass
                deferred = ItemMark(recipient.item_id, ItemStatus.DEFERRED, reason)
                await commits.record(_Record(mid, DeliveryStatus.DEFERRED, reason, deferred))
                return ItemStatus.DEFERRED.value
            await commits.record(_Record(mid, DeliveryStatus.QUEUED, reason, None))
            log.warning("bulk.send_failed_transient", bulk_id=loaded.bulk_id, item=recipient.item_id, code=err.code)
            raise
        now = datetime.now(UTC)
        actor = str(loaded.params.get("actor", "ticketops"))
        history = tuple(
            (
                order.code,
                OrderEvent(
                    type="bulk-delivery-sent",
                    actor=actor,
                    at=now,
                    data={"bulk_id": loaded.bulk_id, "template": loaded.template, "message_id": mid},
                    dedupe_key=f"bulk-delivery-sent:{mid}:{order.code}",
                ),
            )
            for order in recipient.orders
        )
        sent = ItemMark(recipient.item_id, ItemStatus.SENT, message_id=mid)
        await commits.record(_Record(mid, DeliveryStatus.SENT, None, sent, history))
        return ItemStatus.SENT.value


def _when(event: Event, docs: list[TicketDocument]) -> datetime:
    """A message about tickets names their time (their slot's) when they share one, else the event's."""
    times = {d.event_starts_at for d in docs}
    return times.pop() if len(times) == 1 else event.starts_at
