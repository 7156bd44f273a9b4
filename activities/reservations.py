"""Reservation activities: deadline records, expiry and payment on `orders`; reminders on `email`.

Idempotent under retry: expiry and payment are no-ops on an order already expired or paid by
this operation (the history event's dedupe key carries the operation id), and each reminder
is sent once (the delivery log, keyed by the deadline and the reminder's number).
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.contracts import DeliveryOutcome, PaymentReminder, ReservationState, ReservationStep
from activities.delivery import DeliveryActivities
from activities.deps import Deps
from activities.errors import domain_errors
from documents.email_templates import render_email
from email_providers.base import OutgoingEmail
from ticketing.errors import ActionNotAllowed
from ticketing.models import Order, OrderEvent
from ticketing.policies.actions import buyer_email
from ticketing.reservations import (
    EXPIRED_EVENT,
    LINK_PURPOSE,
    PAID_EVENT,
    cancelled_while_waiting,
    check_deadline,
    check_waiting,
    deadline_event,
    expire_reservation,
    pay_reservation,
)
from ticketing.signed_links import sign
from ticketing.store.orders import adjust_inventory, append_history, load_event, load_history, load_order, save_order


def _state(order: Order) -> ReservationState:
    return ReservationState(
        order_code=order.code, event_id=order.event_id, status=order.status.value,
        ticket_ids=[t.id for t in order.valid_tickets],
    )


async def _done_before(conn: object, code: str, kind: str, operation_id: str) -> bool:
    return any(
        e.type == kind and e.data.get("operation_id") == operation_id
        for e in await load_history(conn, code)  # type: ignore[arg-type]
    )


class ReservationActivities:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    @activity.defn(name="record_reservation_deadline")
    @domain_errors
    async def record_deadline(self, req: ReservationStep) -> ReservationState:
        now = datetime.now(UTC)
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code)
            if req.deadline is None:
                raise ActionNotAllowed("a deadline is needed", type="invalid-request")
            show = await load_event(conn, order.event_id)
            if req.extended:
                check_waiting(order, show)  # the update checked the deadline itself
            else:
                check_deadline(order, show, req.deadline, now=now)
            event = deadline_event(order, req.deadline, extended=req.extended, actor=req.actor, now=now,
                                   operation_id=req.operation_id)
            await append_history(conn, order.code, [event])
        return _state(order)

    @activity.defn(name="expire_reservation")
    @domain_errors
    async def expire(self, req: ReservationStep) -> ReservationState:
        now = datetime.now(UTC)
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code, for_update=True)
            if await _done_before(conn, order.code, EXPIRED_EVENT, req.operation_id) or cancelled_while_waiting(order):
                return _state(order)
            after, event, deltas = expire_reservation(order, now=now, operation_id=req.operation_id)
            for delta in deltas:
                await adjust_inventory(conn, delta.ticket_type_id, delta.time_slot_id, delta.delta)
            after = await save_order(conn, order, after, [event])
        return _state(after)

    @activity.defn(name="pay_reservation")
    @domain_errors
    async def pay(self, req: ReservationStep) -> ReservationState:
        now = datetime.now(UTC)
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code, for_update=True)
            if await _done_before(conn, order.code, PAID_EVENT, req.operation_id):
                return _state(order)
            # Held for share (PostgreSQL): an event or time-slot cancellation marks and chooses its orders under
            # the event's row, so a payment either commits first (the order is chosen, paid, and refunded) or
            # sees the mark and is refused.
            show = await load_event(conn, order.event_id, for_share=True)
            after, event = pay_reservation(
                order, show, processor=req.processor, reference=req.reference, actor=req.actor, now=now,
                operation_id=req.operation_id,
            )
            after = await save_order(conn, order, after, [event])
        return _state(after)


class ReservationEmailActivities(DeliveryActivities):
    @activity.defn(name="send_payment_reminder")
    @domain_errors
    async def send_payment_reminder(self, req: PaymentReminder) -> DeliveryOutcome:
        """The buyer's reminder with the payment link, valid until the deadline; none for an order whose
        event or time slot is called off (refused; the run goes on waiting without it)."""
        async with self.deps.store.transaction() as conn:
            order = await load_order(conn, req.order_code)
            event = await load_event(conn, order.event_id)
        check_waiting(order, event)
        recipient = buyer_email(order)
        token = sign(self.deps.settings.signing_secret.get_secret_value(), LINK_PURPOSE, order.code, req.deadline)
        link = f"{self.deps.settings.public_url.rstrip('/')}/pay/{token}"
        body = (
            f"Your reservation {order.code} for {event.name} ({order.payment.amount.display()}) is waiting "
            f"for its payment.\n\nPay before {req.deadline:%Y-%m-%d %H:%M} UTC: {link}\n\n"
            "After the deadline the reservation expires and its tickets are released."
        )

        async def build(mid: str) -> OutgoingEmail:
            rendered = render_email("custom_message", {
                "subject": f"Reminder: pay reservation {order.code} before {req.deadline:%Y-%m-%d}",
                "body": body, "event_name": event.name, "event_starts_at": event.starts_at,
                "buyer_name": order.contact.name, "order_code": order.code,
            })
            return OutgoingEmail(message_id=mid, sender=self.deps.settings.email.sender, to=[recipient],
                                 subject=rendered.subject, text=rendered.text, html=rendered.html)

        return await self._send_once(
            order_code=order.code, operation_id=req.operation_id, kind="payment-reminder", recipient=recipient,
            document=f"payment-reminder:{req.deadline.isoformat()}:{req.sequence}", build=build,
            history=OrderEvent(type="payment-reminder-sent", actor="ticketops", at=datetime.now(UTC),
                               data={"deadline": req.deadline.isoformat(), "sequence": req.sequence}),
        )
