"""Which backoffice actions an order offers right now, each with the reason when not.

The API shows these to the agent; the workflows ask the same functions before
acting, so a disabled button and a refused workflow give the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pydantic import BaseModel

from ticketing.errors import ActionNotAllowed
from ticketing.models import Event, Order, Processor, Ticket, TimeSlot
from ticketing.money import Money, total
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
    "transfer",
    "mark-paid",
    "extend-deadline",
    "request-return",
    "decide-return",
)


def _status_refusal(order: Order, allowed: set[OrderStatus]) -> Refusal | None:
    if order.status in allowed:
        return None
    return Refusal(type=f"order-{order.status.value}", reason=f"the order is {order.status.value}")


def _in_transfer_refusal(order: Order) -> Refusal | None:
    if any(t.in_transfer for t in order.tickets):
        return Refusal(type="ticket-in-transfer", reason="a ticket of this order is being transferred")
    return None


def resend_refusal(order: Order, event: Event) -> Refusal | None:
    if refusal := _status_refusal(order, {OrderStatus.PAID}) or _in_transfer_refusal(order):
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


def transferred_away(order: Order) -> list[Ticket]:
    """Tickets this order gave away: each one's recipient holds a valid replacement on an order of their own."""
    return [t for t in order.tickets if t.state is TicketState.TRANSFERRED]


def voluntary_refundable(order: Order) -> Money:
    """What a refund the buyer or an agent asks for may give back: the refundable total, less the prices of
    tickets transferred away.

    The one rule of transfers and refunds: the giver's money for a ticket they passed on stays paid while
    the recipient's replacement is valid; only an event cancellation (which invalidates the replacement
    too) pays it back, to the payer.
    """
    kept = total([t.price for t in transferred_away(order)], order.currency)
    left = order.refundable_total - kept
    return left if left.amount > 0 else Money.zero(order.currency)


def refund_refusal(order: Order, event: Event, *, event_cancelled: bool = False) -> Refusal | None:
    """Whether the order can be refunded now; `event_cancelled` for the organiser's refunds, which also
    give back tickets transferred away (see `voluntary_refundable`)."""
    # A refunded order is asked too, so that it answers "nothing is left to refund"; a return request
    # is decided by a refund (the return workflow runs it).
    if refusal := _status_refusal(
        order, {OrderStatus.PAID, OrderStatus.REFUNDED, OrderStatus.CANCELLED, OrderStatus.RETURN_REQUESTED}
    ):
        return refusal
    if order.payment.status is not PaymentStatus.SUCCEEDED:
        return Refusal(
            type="payment-not-settled",
            reason=f"the payment is {order.payment.status.value}",
        )
    if order.payment.dispute_open:
        return Refusal(type="dispute-open", reason="a dispute is open on the payment")
    if refusal := _in_transfer_refusal(order):
        return refusal
    if order.payment.processor is Processor.FREE:
        if not order.valid_tickets:
            return Refusal(type="nothing-to-refund", reason="no valid tickets are left")
        return None
    if order.refundable_total.is_zero:
        return Refusal(type="nothing-to-refund", reason="nothing is left to refund")
    if not event_cancelled and voluntary_refundable(order).is_zero:
        return Refusal(
            type="ticket-transferred",
            reason="what is left was paid for tickets transferred away; only an event cancellation refunds them",
        )
    return None


def cancel_refusal(order: Order, event: Event) -> Refusal | None:
    if order.status is OrderStatus.CANCELLED:
        return Refusal(type="order-already-cancelled", reason="the order is already cancelled")
    if order.status is OrderStatus.EXPIRED:
        return Refusal(type="order-expired", reason="the order has expired")
    return _in_transfer_refusal(order)


def reissue_refusal(order: Order, event: Event) -> Refusal | None:
    if refusal := _status_refusal(order, {OrderStatus.PAID}):
        return refusal
    if not order.valid_tickets:
        return Refusal(type="no-valid-tickets", reason="the order has no valid tickets to reissue")
    return None


def reschedule_refusal(order: Order, event: Event, slots: Sequence[TimeSlot] = ()) -> Refusal | None:
    """Moving tickets to another time slot needs the event's slots: the caller passes them.

    An order being cancelled with its event or slot is not moved (the run cancels it whole anyway),
    and no ticket is moved into a cancelled slot (`slot_called_off_refusal`, by the caller)."""
    if refusal := _status_refusal(order, {OrderStatus.PAID}) or called_off_refusal(order, event):
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
    """Seed 002's bulk actions; blacklisted tickets count, since "unscanned" makes them valid again.

    Not for an order being cancelled with its event or slot (`called_off_refusal`): nobody is
    let in, or marked as in, for a show that is called off."""
    if refusal := _status_refusal(order, {OrderStatus.PAID}) or called_off_refusal(order, event):
        return refusal
    if not any(t.is_valid or t.state is TicketState.BLACKLISTED for t in order.tickets):
        return Refusal(type="no-valid-tickets", reason="the order has no tickets whose scan status can change")
    return None


def comment_refusal(order: Order, event: Event) -> Refusal | None:
    """Comments are always possible; a buyer comment also needs the contact's email (checked on add)."""
    return None


def transfer_refusal(
    order: Order, event: Event, now: datetime | None = None, ticket_id: str | None = None
) -> Refusal | None:
    """Per event: transfers allowed or not; never once the event started; never a scanned ticket.

    Without `ticket_id`: whether any ticket of the order could be transferred (the actions list).
    """
    if refusal := _status_refusal(order, {OrderStatus.PAID}):
        return refusal
    if not event.policy.allow_transfers:
        return Refusal(type="transfers-not-allowed", reason="the event does not allow ticket transfers")
    if refusal := called_off_refusal(order, event):
        return refusal
    if (now or datetime.now(UTC)) >= event.starts_at:
        return Refusal(type="event-started", reason="the event has started; tickets can no longer be transferred")
    candidates: list[Ticket] = order.tickets if ticket_id is None else [order.ticket(ticket_id)]
    refusals = [_ticket_transfer_refusal(t) for t in candidates]
    if not refusals or any(r is None for r in refusals):
        return None if refusals else Refusal(type="no-valid-tickets", reason="the order has no tickets")
    if len({r.type for r in refusals if r is not None}) == 1:
        return refusals[0]
    return Refusal(type="no-transferable-tickets", reason="no ticket of this order can be transferred")


def called_off_refusal(order: Order, event: Event) -> Refusal | None:
    """The event, or a time slot of one of the order's tickets, is cancelled: the order is being cancelled.

    A time slot's cancellation cancels every order with a ticket in it whole (other slots' tickets
    too), so once the slot is marked no ticket of such an order is transferred, accepted, scanned
    or moved, and the order is not paid: the cancellation run reaches it one batch at a time, and
    until then the mark is what refuses.
    """
    if refusal := slot_called_off_refusal(event, None):
        return refusal
    slots = set(event.cancelled_time_slots)
    if slots and any(t.time_slot_id in slots for t in order.tickets):
        return Refusal(type="time-slot-cancelled", reason="a ticket of this order is in a cancelled time slot")
    return None


def slot_called_off_refusal(event: Event, time_slot_id: str | None) -> Refusal | None:
    """Selling into one slot of the event (or into the event, without a slot) before there is an order:
    an import's row, a reschedule's target. The same types as `called_off_refusal`."""
    if event.cancelled:
        return Refusal(type="event-cancelled", reason="the event is cancelled")
    if time_slot_id is not None and time_slot_id in event.cancelled_time_slots:
        return Refusal(type="time-slot-cancelled", reason=f"time slot {time_slot_id} is cancelled")
    return None


def reservation_refusal(order: Order, event: Event | None = None) -> Refusal | None:
    """A reserved order waiting for its payment: it can be marked paid, or its deadline extended.

    With its event (opening, extending, paying, and the actions list): never for an order being
    cancelled with its event or slot, so no money is taken for it. Expiry asks without the event:
    releasing the seats of a reservation nobody paid is right either way.
    """
    if refusal := _status_refusal(order, {OrderStatus.RESERVED}):
        return refusal
    if order.payment.status is not PaymentStatus.PENDING:
        return Refusal(type="payment-not-pending", reason=f"the payment is {order.payment.status.value}")
    if event is not None and (refusal := called_off_refusal(order, event)):
        return refusal
    return None


def return_refusal(order: Order, event: Event) -> Refusal | None:
    """A buyer may ask to return a paid order that could be refunded now."""
    if refusal := _status_refusal(order, {OrderStatus.PAID}):
        return refusal
    return refund_refusal(order, event)


def return_decision_refusal(order: Order, event: Event) -> Refusal | None:
    return _status_refusal(order, {OrderStatus.RETURN_REQUESTED})


def _ticket_transfer_refusal(ticket: Ticket) -> Refusal | None:
    if not ticket.is_valid:
        return Refusal(type="ticket-invalid", reason=f"ticket {ticket.id} is {ticket.state.value}")
    if ticket.in_transfer:
        return Refusal(type="ticket-in-transfer", reason=f"ticket {ticket.id} is already being transferred")
    if ticket.used:
        return Refusal(type="ticket-used", reason=f"ticket {ticket.id} has been scanned; it cannot be transferred")
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
    "transfer": transfer_refusal,
    "mark-paid": reservation_refusal,
    "extend-deadline": reservation_refusal,
    "request-return": return_refusal,
    "decide-return": return_decision_refusal,
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


def buyer_email(order: Order) -> str:
    """Where mail to the buyer goes; an order without a contact email cannot be mailed (`no-contact-email`)."""
    if not order.contact.email:
        raise ActionNotAllowed("the order's contact has no email address", type="no-contact-email")
    return order.contact.email
