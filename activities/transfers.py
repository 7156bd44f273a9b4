"""Ticket transfer activities: the store steps on `orders`, the recipient's offer on `email`.

Each store step is one transaction and idempotent under retry: the transfer row's status
says whether the step already happened, and a retry returns what it did.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.contracts import DeliveryOutcome, TransferOfferEmail, TransferState, TransferStep
from activities.delivery import DeliveryActivities
from activities.deps import Deps
from activities.errors import domain_errors
from documents.email_templates import render_email
from email_providers.base import OutgoingEmail
from ticketing.errors import DomainError
from ticketing.models import OrderEvent
from ticketing.signed_links import sign
from ticketing.states import TransferStatus
from ticketing.store.engine import Store
from ticketing.store.orders import insert_order, load_event, load_order, save_order
from ticketing.store.transfers import load_transfer, save_transfer
from ticketing.transfers import LINK_PURPOSE, TicketTransfer, accept_transfer, close_transfer, deadline, open_transfer


def _state(transfer: TicketTransfer, event_id: str) -> TransferState:
    return TransferState(
        transfer_id=transfer.id,
        order_code=transfer.order_code,
        event_id=event_id,
        ticket_id=transfer.ticket_id,
        status=transfer.status.value,
        expires_at=transfer.expires_at,
        new_order_code=transfer.new_order_code,
        new_ticket_id=transfer.new_ticket_id,
    )


class TransferActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="open_transfer")
    @domain_errors
    async def open_transfer(self, req: TransferStep) -> TransferState:
        """Put the ticket in transfer; a refusal settles the request as cancelled before it surfaces."""
        now = datetime.now(UTC)
        async with self.deps.store.transaction() as conn:
            transfer = await load_transfer(conn, req.transfer_id)
            order = await load_order(conn, transfer.order_code, for_update=True)
            if transfer.status is not TransferStatus.REQUESTED:
                return _state(transfer, order.event_id)
            # Held to commit, as on acceptance: an event or slot cancellation then sees this transfer open
            # (and closes it before it refunds), or this opening sees the event or slot cancelled.
            event = await load_event(conn, order.event_id, for_share=True)
            try:
                after, opened, history = open_transfer(
                    order, event, transfer, expires_at=deadline(event, now, req.acceptance_days), now=now
                )
            except DomainError as refused:
                failure = refused
            else:
                await save_order(conn, order, after, [history])
                await save_transfer(conn, opened)
                return _state(opened, order.event_id)
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, transfer.order_code)
            _, closed, _ = close_transfer(
                order, transfer, TransferStatus.CANCELLED, actor="ticketops", now=now, reason=failure.type
            )
            await save_transfer(conn, closed)
        raise failure

    @activity.defn(name="accept_transfer")
    @domain_errors
    async def accept_transfer(self, req: TransferStep) -> TransferState:
        now = datetime.now(UTC)
        async with self.deps.store.transaction() as conn:
            transfer = await load_transfer(conn, req.transfer_id)
            order = await load_order(conn, transfer.order_code, for_update=True)
            if transfer.status is TransferStatus.ACCEPTED:
                return _state(transfer, order.event_id)
            # Held to commit: an event cancellation marks the event before it chooses its orders, so it
            # either sees this replacement's order or this acceptance sees the event cancelled.
            event = await load_event(conn, order.event_id, for_share=True)
            done = accept_transfer(order, event, transfer, now=now)
            await insert_order(conn, done.new_order, done.new_history)
            await save_order(conn, order, done.order, done.history)
            await save_transfer(conn, done.transfer)
        return _state(done.transfer, order.event_id)

    @activity.defn(name="close_transfer")
    @domain_errors
    async def close_transfer(self, req: TransferStep) -> TransferState:
        """Cancel or expire: the ticket is valid for its holder again."""
        target = TransferStatus(req.status or TransferStatus.CANCELLED.value)
        return await close_in_store(self.deps.store, req.transfer_id, target, actor=req.actor,
                                    reason=req.reason or target.value)


async def close_in_store(store: Store, transfer_id: str, target: TransferStatus, *, actor: str, reason: str
                         ) -> TransferState:
    """The transfer cancelled or expired in one transaction; a repeat finds it so and returns it."""
    async with store.transaction() as conn:
        transfer = await load_transfer(conn, transfer_id)
        order = await load_order(conn, transfer.order_code, for_update=True)
        if transfer.status is target:
            return _state(transfer, order.event_id)
        after, closed, history = close_transfer(order, transfer, target, actor=actor, now=datetime.now(UTC),
                                                reason=reason)
        if history:
            await save_order(conn, order, after, history)
        await save_transfer(conn, closed)
    return _state(closed, order.event_id)


class TransferEmailActivities(DeliveryActivities):
    @activity.defn(name="send_transfer_offer")
    @domain_errors
    async def send_transfer_offer(self, req: TransferOfferEmail) -> DeliveryOutcome:
        """Mail the recipient the signed accept link; recorded on the giver's order, once."""
        async with self.deps.store.transaction() as conn:
            transfer = await load_transfer(conn, req.transfer_id)
            order = await load_order(conn, transfer.order_code)
            event = await load_event(conn, order.event_id)
        recipient = transfer.recipient.email or ""
        token = sign(self.deps.settings.signing_secret.get_secret_value(), LINK_PURPOSE, transfer.id, req.expires_at)
        link = f"{self.deps.settings.public_url.rstrip('/')}/transfers/{token}"
        body = (
            f"A ticket for {event.name} has been transferred to you.\n\n"
            f"Accept it before {req.expires_at:%Y-%m-%d %H:%M} UTC: {link}\n\n"
            "Once you accept, your own ticket with a new barcode is emailed to you."
        )

        async def build(mid: str) -> OutgoingEmail:
            rendered = render_email(
                "custom_message",
                {"subject": f"A ticket for {event.name} is waiting for you", "body": body,
                 "event_name": event.name, "event_starts_at": event.starts_at,
                "buyer_name": transfer.recipient.name, "order_code": None},
            )
            return OutgoingEmail(
                message_id=mid, sender=self.deps.settings.email.sender, to=[recipient],
                subject=rendered.subject, text=rendered.text, html=rendered.html,
            )

        return await self._send_once(
            order_code=order.code,
            operation_id=req.operation_id,
            kind="transfer-offer",
            recipient=recipient,
            document=f"transfer-offer:{transfer.id}",
            build=build,
            history=OrderEvent(
                type="transfer-offer-sent", actor="ticketops", at=datetime.now(UTC),
                data={"transfer_id": transfer.id, "ticket_id": transfer.ticket_id},
            ),
        )
