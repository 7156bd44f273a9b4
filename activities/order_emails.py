"""Order emails beyond the tickets: the personalisation link and the payment receipt.

They reuse `DeliveryActivities._send_once` (delivery log claim, send, mark sent with the
history event), so a retried activity never mails the same message twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from temporalio import activity

from activities.contracts import DeliveryOutcome, PersonalisationLinkEmail, ReceiptEmail
from activities.delivery import DeliveryActivities
from activities.errors import domain_errors
from documents.from_orders import receipt_document
from documents.receipt_pdf import render_receipt_pdf
from email_providers.base import Attachment, OutgoingEmail
from ticketing.errors import ActionNotAllowed
from ticketing.models import Event, OrderEvent
from ticketing.personalisation_tokens import LinkClaims, SupersededLink, make_token
from ticketing.policies.actions import buyer_email, receipt_refusal
from ticketing.store.orders import load_event, load_order, load_ticket_types
from ticketing.store.personalisation import current_round
from ticketing.store.refunds import list_refunds


class OrderEmailActivities(DeliveryActivities):
    def _builder(
        self,
        recipient: str,
        template: str,
        context: dict[str, object],
        event: Event,
        attach: Callable[[], Attachment] | None = None,
    ) -> Callable[[str], Awaitable[OutgoingEmail]]:
        async def build(mid: str) -> OutgoingEmail:
            attachments = [await asyncio.to_thread(attach)] if attach else []
            return self._email(mid, recipient, template, context, event, attachments)

        return build

    @activity.defn(name="send_personalisation_link")
    @domain_errors
    async def send_personalisation_link(self, req: PersonalisationLinkEmail) -> DeliveryOutcome:
        """Mail the main booker a signed link for this round; a newer round makes it pointless."""
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code)
            event = await load_event(conn, order.event_id)
            latest = await current_round(conn, order.code)
        if latest != req.round:
            raise SupersededLink("personalisation was opened again; the newer round sends its own link")
        recipient = buyer_email(order)
        secret = self.deps.settings.signing_secret.get_secret_value()
        token = make_token(secret, LinkClaims(order_code=order.code, round=req.round, expires_at=req.expires_at))
        context: dict[str, object] = {
            "order_code": order.code,
            "event_name": event.name,
            "buyer_name": order.contact.name,
            "link": f"{self.deps.settings.public_url.rstrip('/')}/personalisation/{token}",
            "expires_at": req.expires_at,
        }
        return await self._send_once(
            order_code=order.code,
            operation_id=req.operation_id,
            kind="personalisation-link",
            recipient=recipient,
            document=f"personalisation-link:{req.round}",
            build=self._builder(recipient, "personalisation_link", context, event),
            history=OrderEvent(
                type="personalisation-link-sent",
                actor=req.actor,
                at=datetime.now(UTC),
                data={"round": req.round, "operation_id": req.operation_id},
            ),
        )

    @activity.defn(name="send_payment_receipt")
    @domain_errors
    async def send_payment_receipt(self, req: ReceiptEmail) -> DeliveryOutcome:
        """Mail the payment receipt as a PDF; refuses exactly as the action list does."""
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code)
            event = await load_event(conn, order.event_id)
            types = {t.id: t for t in await load_ticket_types(conn, event.id)}
            refunds = await list_refunds(conn, order_code=order.code, limit=500)
        if refusal := receipt_refusal(order, event):
            raise ActionNotAllowed(refusal.reason, type=refusal.type)
        recipient = buyer_email(order)
        doc = receipt_document(order, event, types, refunds)
        context: dict[str, object] = {
            "order_code": order.code,
            "event_name": event.name,
            "buyer_name": order.contact.name,
            "issued_at": doc.issued_at,
            "total_display": doc.total_display,
            "payment_method": doc.payment_method,
            "lines": [line.model_dump() for line in doc.lines],
        }

        def attach() -> Attachment:
            data = render_receipt_pdf(doc)
            return Attachment(filename=f"receipt-{order.code}.pdf", content_type="application/pdf", data=data)

        return await self._send_once(
            order_code=order.code,
            operation_id=req.operation_id,
            kind="payment-receipt",
            recipient=recipient,
            document="payment-receipt",
            build=self._builder(recipient, "payment_receipt", context, event, attach),
            history=OrderEvent(
                type="receipt-sent", actor=req.actor, at=datetime.now(UTC), data={"operation_id": req.operation_id}
            ),
        )
