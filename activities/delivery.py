"""Email activities on the `email` queue: render, send once, record.

The delivery log is asked before every send: a retried activity never sends a
message the log says was sent. Tickets are read before the claim (to render them) and
checked again in the transaction that claims the message, with the order locked: a
reissue or refund that lands between the two makes the activity read again, so a
message never carries a ticket that was invalid when it was claimed. (A reissue that
commits after the claim sends the new ticket itself.) Between send and log there is a window (a
crash right after the server accepted); the Message-ID is deterministic so
that a resend in that window is recognisable downstream as the same message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import DeliverTickets, DeliveryOutcome, RefundEmail
from activities.deps import Deps
from activities.errors import domain_errors
from documents.branding import Branding, event_branding, reply_headers, sender_mailbox
from documents.email_templates import render_email
from documents.from_orders import (
    payment_method_label,
    refund_failure_in_words,
    refund_receipt_lines,
    ticket_document,
    tickets_email_context,
)
from documents.models import TicketDocument
from email_providers.base import Attachment, OutgoingEmail, PermanentEmailError, TransientEmailError
from ticketing.errors import ActionNotAllowed
from ticketing.models import Event, Order, OrderEvent, Ticket
from ticketing.policies.actions import buyer_email, return_refusal, transfer_refusal
from ticketing.returns import return_link
from ticketing.states import TicketState
from ticketing.store.deliveries import DeliveryStatus, claim_delivery, close_open_deliveries, mark_delivery
from ticketing.store.orders import (
    append_history,
    load_event,
    load_order,
    load_ticket_types,
    load_time_slots,
)
from ticketing.store.refunds import load_refund
from ticketing.transfers import manage_link

log = structlog.get_logger(__name__)


def message_id(operation_id: str, recipient: str, document: str) -> str:
    """One Message-ID per (operation, recipient, document), stable across retries."""
    digest = hashlib.sha256(f"{operation_id}|{recipient.lower()}|{document}".encode()).hexdigest()
    return f"{digest[:40]}@ticketops"


# Reads that a concurrent action overtakes before the claim are retried at once this many times.
STALE_READS = 3


class _StaleRead(Exception):
    """The tickets read for the message changed before the claim: read again."""


def _deliverable(order: Order, ticket_ids: Sequence[str]) -> list[Ticket]:
    return [t for t in (order.ticket(i) for i in ticket_ids) if t.is_valid]


class DeliveryActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    def _email(
        self,
        mid: str,
        recipient: str,
        template: str,
        context: dict[str, object],
        event: Event | None,
        attachments: list[Attachment] | None = None,
    ) -> OutgoingEmail:
        """Render a buyer's email from the event's organiser: display name, reply-to and branding."""
        brand: Branding = event_branding(event, self.deps.settings.email)
        rendered = render_email(template, context, brand)
        return OutgoingEmail(
            message_id=mid,
            sender=sender_mailbox(brand, self.deps.settings.email.sender),
            to=[recipient],
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            attachments=attachments or [],
            headers=reply_headers(brand),
        )

    def _return_link(self, order: Order, event: Event) -> str | None:
        """The buyer's signed return link, when the event lets this order be returned now."""
        if return_refusal(order, event) is not None:
            return None
        settings = self.deps.settings
        link = return_link(settings.signing_secret.get_secret_value(), settings.public_url, order.code, event,
                           now=datetime.now(UTC))
        return link[0] if link else None

    def _manage_links(self, order: Order, event: Event, docs: Sequence[TicketDocument]) -> dict[str, str]:
        """By ticket code, the holder's signed link to transfer the ticket, for those the event lets go now."""
        now, settings = datetime.now(UTC), self.deps.settings
        links: dict[str, str] = {}
        for doc in docs:
            if transfer_refusal(order, event, now, doc.ticket_id) is not None:
                continue
            link = manage_link(settings.signing_secret.get_secret_value(), settings.public_url, order.code,
                               doc.ticket_id, event, now=now)
            if link:
                links[doc.ticket_code] = link[0]
        return links

    async def _send_once(
        self,
        *,
        order_code: str | None,
        operation_id: str,
        kind: str,
        recipient: str,
        document: str,
        build: Callable[[str], Awaitable[OutgoingEmail]],
        history: OrderEvent | None,
        still_valid: Callable[[AsyncConnection], Awaitable[bool]] | None = None,
    ) -> DeliveryOutcome:
        """Claim in the delivery log, send, then mark sent and write history together.

        `order_code` None: a message about no one order (finance's reconciliation report); no history.
        `still_valid` runs first in the claiming transaction; False raises `_StaleRead` and claims nothing.
        """
        store = self.deps.store
        mid = message_id(operation_id, recipient, document)
        if history is not None:
            history = history.model_copy(
                update={"data": {**history.data, "message_id": mid}, "dedupe_key": f"{history.type}:{mid}"}
            )
        async with store.transaction() as conn:
            if still_valid is not None:
                if not await still_valid(conn):
                    raise _StaleRead
                # An earlier attempt claimed another set of tickets for this operation: that one never goes.
                await close_open_deliveries(
                    conn, DeliveryStatus.SKIPPED, "superseded: the tickets changed before a retry",
                    workflow_id=operation_id, kind=kind, keep=mid,
                )
            prior = await claim_delivery(
                conn,
                message_id=mid,
                order_code=order_code,
                workflow_id=operation_id,
                kind=kind,
                provider=self.deps.email.name,
            )
            if prior is DeliveryStatus.SENT and history is not None and order_code is not None:
                await append_history(conn, order_code, [history])
        if prior is DeliveryStatus.SENT:
            log.info("delivery.already_sent", message_id=mid, order=order_code, kind=kind)
            return DeliveryOutcome(message_id=mid, status="already-sent", ticket_count=0)
        email = await build(mid)
        try:
            await self.deps.email.send(email)
        except PermanentEmailError as err:
            async with store.transaction() as conn:
                await mark_delivery(conn, mid, DeliveryStatus.FAILED, str(err))
                if history is not None and order_code is not None:
                    failed = history.model_copy(
                        update={
                            "type": "delivery-failed",
                            "data": {**history.data, "reason": str(err), "kind": kind},
                            "dedupe_key": f"delivery-failed:{mid}",
                        }
                    )
                    await append_history(conn, order_code, [failed])
            raise ApplicationError(
                f"the email provider rejected the message: {err}",
                {"type": "email-rejected", "message_id": mid},
                type="email-rejected",
                non_retryable=True,
            ) from err
        except TransientEmailError as err:
            async with store.transaction() as conn:
                await mark_delivery(conn, mid, DeliveryStatus.DEFERRED, str(err))
            raise
        async with store.transaction() as conn:
            await mark_delivery(conn, mid, DeliveryStatus.SENT)
            if history is not None and order_code is not None:
                await append_history(conn, order_code, [history])
        log.info("delivery.sent", message_id=mid, order=order_code, kind=kind)
        return DeliveryOutcome(message_id=mid, status="sent", ticket_count=0)

    @activity.defn(name="deliver_tickets")
    @domain_errors
    async def deliver_tickets(self, req: DeliverTickets) -> DeliveryOutcome:
        for _ in range(STALE_READS):
            try:
                return await self._deliver_tickets(req)
            except _StaleRead:
                log.info("delivery.tickets_changed_before_claim", order=req.order_code, kind=req.kind)
        raise ApplicationError(
            "the order's tickets kept changing while the message was being claimed",
            type="tickets-changing",
        )

    async def _deliver_tickets(self, req: DeliverTickets) -> DeliveryOutcome:
        async with self.deps.store.read() as conn:
            order = await load_order(conn, req.order_code)
            event = await load_event(conn, order.event_id)
            types = {t.id: t for t in await load_ticket_types(conn, event.id)}
            slots = {s.id: s for s in await load_time_slots(conn, event.id)}
        recipient = buyer_email(order)
        deliverable = _deliverable(order, req.ticket_ids)
        if not deliverable:
            async with self.deps.store.transaction() as conn:  # what an earlier attempt claimed never goes
                await close_open_deliveries(
                    conn, DeliveryStatus.SKIPPED, "no-valid-tickets", workflow_id=req.operation_id, kind=req.kind
                )
            raise ActionNotAllowed("none of the tickets is valid any more", type="no-valid-tickets")
        docs = [ticket_document(order, event, t, types, slots) for t in deliverable]
        read = [(t.id, t.barcode) for t in deliverable]

        async def still_valid(conn: AsyncConnection) -> bool:
            """The same tickets, with the same barcodes, valid now that the order is locked."""
            now = await load_order(conn, req.order_code, for_update=True)
            return [(t.id, t.barcode) for t in _deliverable(now, req.ticket_ids)] == read

        async def build(mid: str) -> OutgoingEmail:
            pdfs = await self.deps.ticket_pdfs().get(docs)
            context = tickets_email_context(event, order.code, order.contact.name, docs,
                                            self._return_link(order, event), self._manage_links(order, event, docs))
            attachments = [
                Attachment(filename=f"ticket-{d.ticket_code}.pdf", content_type="application/pdf", data=pdf)
                for d, pdf in zip(docs, pdfs, strict=True)
            ]
            return self._email(mid, recipient, "tickets", context, event, attachments)

        outcome = await self._send_once(
            order_code=order.code,
            operation_id=req.operation_id,
            kind=req.kind,
            recipient=recipient,
            document=f"{req.kind}:" + ",".join(sorted(t.id for t in deliverable)),
            build=build,
            still_valid=still_valid,
            history=OrderEvent(
                type=req.history_type,
                actor=req.actor,
                at=datetime.now(UTC),
                data={"tickets": [t.id for t in deliverable], "operation_id": req.operation_id},
            ),
        )
        return outcome.model_copy(update={"ticket_count": len(deliverable)})

    @activity.defn(name="send_refund_email")
    @domain_errors
    async def send_refund_email(self, req: RefundEmail) -> DeliveryOutcome:
        """The customer's refund receipt or late-failure notice, or finance's notice of a failed or waiting refund."""
        async with self.deps.store.transaction() as conn:
            refund = await load_refund(conn, req.refund_id)
            order = await load_order(conn, refund.order_code)
            event = await load_event(conn, order.event_id)
            types = {t.id: t for t in await load_ticket_types(conn, event.id)}
        to_finance = req.kind not in ("receipt", "failed-later")
        recipient = self.deps.settings.email.finance_address if to_finance else order.contact.email
        if not recipient:
            return DeliveryOutcome(message_id="", status="skipped-no-email", ticket_count=0)
        template = {
            "receipt": "refund_receipt",
            "failed-later": "refund_failed",
            "refund-error": "finance_refund_error",
            "manual-reminder": "finance_manual_refund_reminder",
        }[req.kind]
        # Finance reads the processor's words; the buyer reads theirs.
        method = (
            f"{order.payment.method.value} ({refund.processor.value})" if to_finance else payment_method_label(order)
        )
        tickets = {t.id: t for t in order.tickets}
        context: dict[str, object] = {
            "event_name": event.name,
            "order_code": order.code,
            "buyer_name": order.contact.name,
            "refund_id": refund.id,
            "amount_display": refund.amount.display(),
            "refund_total": refund.amount.display(),
            "payment_method": method,
            "reason": refund.failure_reason or refund.reason,
            "failed_at": refund.updated_at,
            "requested_at": refund.created_at,
            "days_waiting": max(0, (datetime.now(UTC) - refund.created_at).days),
            "workflow_id": refund.workflow_id,
            "lines": refund_receipt_lines(order, refund, types),
            "expected_arrival": "5 to 10 business days" if refund.processor.value == "stripe" else None,
        }
        if req.kind == "failed-later":
            context["reason"] = refund_failure_in_words(refund.failure_reason)
            context["tickets_valid_again"] = any(
                tid in tickets and tickets[tid].state is TicketState.VALID for tid in refund.ticket_ids
            )

        async def build(mid: str) -> OutgoingEmail:
            return self._email(mid, recipient, template, context, None if to_finance else event)

        history = None
        if not to_finance:
            history = OrderEvent(
                type="refund-receipt-sent" if req.kind == "receipt" else "refund-failure-sent",
                actor="ticketops",
                at=datetime.now(UTC),
                data={"refund_id": refund.id},
            )
        return await self._send_once(
            order_code=order.code,
            operation_id=req.operation_id,
            kind=f"refund-{req.kind}",
            recipient=recipient,
            document=f"refund:{refund.id}:{req.kind}:{refund.attempt}:{req.sequence}",
            build=build,
            history=history,
        )
