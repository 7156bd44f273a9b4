"""Email activities on the `email` queue: render, send once, record.

The delivery log is asked before every send: a retried activity never sends a
message the log says was sent. Between send and log there is a window (a
crash right after the SMTP server accepted); the Message-ID is deterministic
so that a resend in that window is recognisable downstream as the same message.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import DeliverTickets, DeliveryOutcome
from activities.deps import Deps
from activities.errors import domain_errors
from activities.ticket_documents import ticket_document
from documents.email_templates import render_email
from documents.ticket_pdf import render_ticket_pdf
from email_providers.base import Attachment, OutgoingEmail, PermanentEmailError, TransientEmailError
from ticketing.errors import ActionNotAllowed
from ticketing.models import OrderEvent
from ticketing.store.deliveries import DeliveryStatus, claim_delivery, mark_delivery
from ticketing.store.orders import (
    append_history,
    load_event,
    load_order,
    load_ticket_types,
    load_time_slots,
)

log = structlog.get_logger(__name__)


def message_id(operation_id: str, recipient: str, document: str) -> str:
    """One Message-ID per (operation, recipient, document), stable across retries."""
    digest = hashlib.sha256(f"{operation_id}|{recipient.lower()}|{document}".encode()).hexdigest()
    return f"<{digest[:40]}@ticketops>"


class DeliveryActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="deliver_tickets")
    @domain_errors
    async def deliver_tickets(self, req: DeliverTickets) -> DeliveryOutcome:
        store = self.deps.store
        async with store.transaction() as conn:
            order = await load_order(conn, req.order_code)
            event = await load_event(conn, order.event_id)
            types = {t.id: t for t in await load_ticket_types(conn, event.id)}
            slots = {s.id: s for s in await load_time_slots(conn, event.id)}
        recipient = order.contact.email
        if not recipient:
            raise ActionNotAllowed("the order's contact has no email address", type="no-contact-email")
        wanted = [order.ticket(t) for t in req.ticket_ids]
        deliverable = [t for t in wanted if t.is_valid]
        if not deliverable:
            raise ActionNotAllowed("none of the tickets is valid any more", type="no-valid-tickets")
        document = f"{req.kind}:" + ",".join(sorted(t.id for t in deliverable))
        mid = message_id(req.operation_id, recipient, document)
        provider = self.deps.email.name
        history = OrderEvent(
            type=req.history_type,
            actor=req.actor,
            at=datetime.now(UTC),
            data={"tickets": [t.id for t in deliverable], "message_id": mid, "operation_id": req.operation_id},
            dedupe_key=f"{req.history_type}:{mid}",
        )
        async with store.transaction() as conn:
            prior = await claim_delivery(
                conn,
                message_id=mid,
                order_code=order.code,
                workflow_id=req.operation_id,
                kind=req.kind,
                provider=provider,
            )
            if prior is DeliveryStatus.SENT:
                await append_history(conn, order.code, [history])
        if prior is DeliveryStatus.SENT:
            log.info("delivery.already_sent", message_id=mid, order=order.code)
            return DeliveryOutcome(message_id=mid, status="already-sent", ticket_count=len(deliverable))

        docs = [ticket_document(order, event, t, types, slots) for t in deliverable]
        pdfs = await asyncio.to_thread(lambda: [render_ticket_pdf(d) for d in docs])
        rendered = render_email(
            "tickets",
            {
                "event_name": event.name,
                "order_code": order.code,
                "buyer_name": order.contact.name,
                "tickets": [d.model_dump() for d in docs],
            },
        )
        email = OutgoingEmail(
            message_id=mid,
            sender=self.deps.settings.email.sender,
            to=[recipient],
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            attachments=[
                Attachment(filename=f"ticket-{d.ticket_id}.pdf", content_type="application/pdf", data=pdf)
                for d, pdf in zip(docs, pdfs, strict=True)
            ],
        )
        try:
            await self.deps.email.send(email)
        except PermanentEmailError as err:
            async with store.transaction() as conn:
                await mark_delivery(conn, mid, DeliveryStatus.FAILED, str(err))
                await append_history(
                    conn,
                    order.code,
                    [
                        history.model_copy(
                            update={
                                "type": "delivery-failed",
                                "data": {**history.data, "reason": str(err)},
                                "dedupe_key": f"delivery-failed:{mid}",
                            }
                        )
                    ],
                )
            raise ApplicationError(
                f"the email provider rejected the message: {err}",
                {"type": "email-rejected", "message_id": mid},
                type="email-rejected",
                non_retryable=True,
            ) from err
        except TransientEmailError as err:
            async with store.transaction() as conn:
                await mark_delivery(conn, mid, DeliveryStatus.QUEUED, str(err))
            raise
        async with store.transaction() as conn:
            await mark_delivery(conn, mid, DeliveryStatus.SENT)
            await append_history(conn, order.code, [history])
        log.info("delivery.sent", message_id=mid, order=order.code, tickets=len(deliverable))
        return DeliveryOutcome(message_id=mid, status="sent", ticket_count=len(deliverable))
