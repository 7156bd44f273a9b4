"""Which backoffice actions an order offers right now, each with the reason when not.

The API shows these to the agent; the workflows ask the same functions before
acting, so a disabled button and a refused workflow give the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel

from ticketing.models import Event, Order, Processor, TimeSlot
from ticketing.states import OrderStatus, PaymentStatus, TicketState


class Action(BaseModel):
    name: str
    enabled: bool
    reason: str | None = None
    reason_type: str | None = None


class Refusal(BaseModel):
    type: str
    reason: str


ACTION_NAMES = (
    "resend",
    "open-personalisation",
    "refund",
    "cancel",
    "reissue",
    "reschedule",
    "edit-ticket",
    "edit-contact",
    "send-receipt",
    "set-scan-status",
    "download-tickets",
    "download-receipt",
    "add-comment",
)


def _status_refusal(order: Order, allowed: set[OrderStatus]) -> Refusal | None:
    if order.status in allowed:
        return None
    return Refusal(type=f"order-{order.status.value}", reason=f"the order is {order.status.value}")


def resend_refusal(order: Order, event: Event) -> Refusal | None:
    if refusal := _status_refusal(order, {OrderStatus.PAID}):
        return refusal
    if not order.valid_tickets:
        return Refusal(type="no-valid-tickets", reason="the order has no valid tickets to deliver")
    if not order.contact.email:
        return Refusal(type="no-contact-email", reason="the order's contact has no email address")
    return None


def personalisation_refusal(order: Order, event: Event) -> Refusal | None:
    if refusal := _status_refusal(order, {OrderStatus.PAID}):
        return refusal
    if not any(t.requires_personalisation for t in order.valid_tickets):
        return Refusal(
            type="personalisation-not-required",
            reason="no valid ticket of this order requires personal data",
        )
    if not order.contact.email:
        return Refusal(type="no-contact-email", reason="the order's contact has no email address")
    return None


def refund_refusal(order: Order, event: Event) -> Refusal | None:
    # A refunded order is asked too, so that it answers "nothing is left to refund".
    if refusal := _status_refusal(order, {OrderStatus.PAID, OrderStatus.REFUNDED, OrderStatus.CANCELLED}):
        return refusal
    if order.payment.status is not PaymentStatus.SUCCEEDED:
        return Refusal(
            type="payment-not-settled",
            reason=f"the payment is {order.payment.status.value}",
        )
    if order.payment.dispute_open:
        return Refusal(type="dispute-open", reason="a dispute is open on the payment")
    if order.payment.processor is Processor.FREE:
        if not order.valid_tickets:
            return Refusal(type="nothing-to-refund", reason="no valid tickets are left")
        return None
    if order.refundable_total.is_zero:
        return Refusal(type="nothing-to-refund", reason="nothing is left to refund")
    return None


def cancel_refusal(order: Order, event: Event) -> Refusal | None:
    if order.status is OrderStatus.CANCELLED:
        return Refusal(type="order-already-cancelled", reason="the order is already cancelled")
    if order.status is OrderStatus.EXPIRED:
        return Refusal(type="order-expired", reason="the order has expired")
    if any(t.in_transfer for t in order.tickets):
        return Refusal(type="ticket-in-transfer", reason="a ticket of this order is being transferred")
    return None


def reissue_refusal(order: Order, event: Event) -> Refusal | None:
    if refusal := _status_refusal(order, {OrderStatus.PAID}):
        return refusal
    if not order.valid_tickets:
        return Refusal(type="no-valid-tickets", reason="the order has no valid tickets to reissue")
    return None


def reschedule_refusal(order: Order, event: Event, slots: Sequence[TimeSlot] = ()) -> Refusal | None:
    """Moving tickets to another time slot needs the event's slots: the caller passes them."""
    if refusal := _status_refusal(order, {OrderStatus.PAID}):
        return refusal
    if not order.valid_tickets:
        return Refusal(type="no-valid-tickets", reason="the order has no valid tickets to move")
    if len([s for s in slots if s.event_id == event.id]) < 2:
        return Refusal(type="single-time-slot", reason="the event has fewer than two time slots")
    return None


def edit_ticket_refusal(order: Order, event: Event) -> Refusal | None:
    if refusal := _status_refusal(order, {OrderStatus.PAID}):
        return refusal
    if not order.valid_tickets:
        return Refusal(type="no-valid-tickets", reason="the order has no valid tickets to edit")
    return None


def edit_contact_refusal(order: Order, event: Event) -> Refusal | None:
    return _status_refusal(
        order, {OrderStatus.PAID, OrderStatus.RESERVED, OrderStatus.REFUNDED, OrderStatus.CANCELLED}
    )


def receipt_refusal(order: Order, event: Event) -> Refusal | None:
    if refusal := download_receipt_refusal(order, event):
        return refusal
    if not order.contact.email:
        return Refusal(type="no-contact-email", reason="the order's contact has no email address")
    return None


def download_receipt_refusal(order: Order, event: Event) -> Refusal | None:
    """A receipt shows a settled payment; a cancelled or refunded order keeps its receipt (with refunds)."""
    if refusal := _status_refusal(order, {OrderStatus.PAID, OrderStatus.REFUNDED, OrderStatus.CANCELLED}):
        return refusal
    if order.payment.status is not PaymentStatus.SUCCEEDED:
        return Refusal(type="payment-not-settled", reason=f"the payment is {order.payment.status.value}")
    return None


def download_tickets_refusal(order: Order, event: Event) -> Refusal | None:
    if refusal := _status_refusal(order, {OrderStatus.PAID}):
        return refusal
    if not order.valid_tickets:
        return Refusal(type="no-valid-tickets", reason="the order has no valid tickets to download")
    return None


def scan_status_refusal(order: Order, event: Event) -> Refusal | None:
    """Seed 002's bulk actions; blacklisted tickets count, since "unscanned" makes them valid again."""
    if refusal := _status_refusal(order, {OrderStatus.PAID}):
        return refusal
    if not any(t.is_valid or t.state is TicketState.BLACKLISTED for t in order.tickets):
        return Refusal(type="no-valid-tickets", reason="the order has no tickets whose scan status can change")
    return None


def comment_refusal(order: Order, event: Event) -> Refusal | None:
    """Comments are always possible; a buyer comment also needs the contact's email (checked on add)."""
    return None


RULES: dict[str, Callable[[Order, Event], Refusal | None]] = {
    "resend": resend_refusal,
    "open-personalisation": personalisation_refusal,
    "refund": refund_refusal,
    "cancel": cancel_refusal,
    "reissue": reissue_refusal,
    "reschedule": reschedule_refusal,
    "edit-ticket": edit_ticket_refusal,
    "edit-contact": edit_contact_refusal,
    "send-receipt": receipt_refusal,
    "set-scan-status": scan_status_refusal,
    "download-tickets": download_tickets_refusal,
    "download-receipt": download_receipt_refusal,
    "add-comment": comment_refusal,
}


def available_actions(order: Order, event: Event, slots: Sequence[TimeSlot] = ()) -> list[Action]:
    actions = []
    for name in ACTION_NAMES:
        refusal = reschedule_refusal(order, event, slots) if name == "reschedule" else RULES[name](order, event)
        actions.append(
            Action(
                name=name,
                enabled=refusal is None,
                reason=refusal.reason if refusal else None,
                reason_type=refusal.type if refusal else None,
            )
        )
    return actions
