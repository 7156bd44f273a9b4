"""Which actions an order offers, and the reason for each one it does not."""

from __future__ import annotations

import pytest

from tests.builders import make_event, make_order
from ticketing.models import EventPolicy, Payment, PaymentMethod
from ticketing.policies.actions import (
    available_actions,
    called_off_refusal,
    reservation_refusal,
    slot_called_off_refusal,
)
from ticketing.states import OrderStatus, PaymentStatus, ScanState, TicketState


def _actions(order, event):
    return {a.name: a for a in available_actions(order, event)}


def test_paid_card_order_offers_everything_but_personalisation() -> None:
    event, types, _ = make_event()
    acts = _actions(make_order(event, types), event)
    assert {n for n, a in acts.items() if a.enabled} == {
        "resend", "refund", "cancel", "reissue", "edit-ticket", "edit-contact", "send-receipt",
        "set-scan-status", "download-tickets", "download-receipt", "add-comment", "request-return",
    }
    assert acts["open-personalisation"].reason_type == "personalisation-not-required"
    assert acts["transfer"].reason_type == "event-started"  # the builders' event started on 2026-12-01
    assert acts["mark-paid"].reason_type == acts["extend-deadline"].reason_type == "order-paid"
    assert acts["decide-return"].reason_type == "order-paid"


def test_personalised_ticket_enables_open_personalisation() -> None:
    event, types, _ = make_event(personalised=True)
    acts = _actions(make_order(event, types, vip=1), event)
    assert acts["open-personalisation"].enabled


@pytest.mark.parametrize(
    ("status", "resend", "refund", "cancel"),
    [
        (OrderStatus.RESERVED, "order-reserved", "order-reserved", None),
        (OrderStatus.EXPIRED, "order-expired", "order-expired", "order-expired"),
        (OrderStatus.CANCELLED, "order-cancelled", None, "order-already-cancelled"),
    ],
)
def test_status_disables_actions(status: OrderStatus, resend: str, refund: str | None, cancel: str | None) -> None:
    event, types, _ = make_event()
    order = make_order(event, types, status=status)
    acts = _actions(order, event)
    assert acts["resend"].reason_type == resend
    assert acts["refund"].reason_type == refund
    assert acts["cancel"].reason_type == cancel
    for a in acts.values():
        assert a.enabled == (a.reason is None)


def test_no_valid_tickets_disables_resend_and_reissue() -> None:
    event, types, _ = make_event()
    order = make_order(event, types)
    order = order.model_copy(
        update={"tickets": [t.model_copy(update={"state": TicketState.CANCELLED}) for t in order.tickets]}
    )
    acts = _actions(order, event)
    assert acts["resend"].reason_type == "no-valid-tickets"
    assert acts["reissue"].reason_type == "no-valid-tickets"


def test_no_email_disables_resend() -> None:
    event, types, _ = make_event()
    acts = _actions(make_order(event, types, email=None), event)
    assert acts["resend"].reason_type == "no-contact-email"
    assert "email" in (acts["resend"].reason or "")


def test_dispute_disables_refund() -> None:
    event, types, _ = make_event()
    order = make_order(event, types)
    order = order.model_copy(update={"payment": order.payment.model_copy(update={"dispute_open": True})})
    assert _actions(order, event)["refund"].reason_type == "dispute-open"


def test_unsettled_payment_disables_refund() -> None:
    event, types, _ = make_event()
    order = make_order(event, types)
    pending = Payment(**{**order.payment.model_dump(), "status": PaymentStatus.PENDING})
    order = order.model_copy(update={"payment": pending})
    assert _actions(order, event)["refund"].reason_type == "payment-not-settled"


def test_ticket_in_transfer_blocks_cancel() -> None:
    event, types, _ = make_event()
    order = make_order(event, types)
    moved = [order.tickets[0].model_copy(update={"in_transfer": True}), *order.tickets[1:]]
    assert _actions(order.model_copy(update={"tickets": moved}), event)["cancel"].reason_type == "ticket-in-transfer"


def test_free_order_refund_needs_valid_tickets() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, method=PaymentMethod.FREE)
    assert _actions(order, event)["refund"].enabled
    assert order.paid_total.amount == 0


def test_fully_refunded_order_has_nothing_to_refund() -> None:
    event, types, _ = make_event()
    order = make_order(event, types)
    refunded = order.paid_total - order.non_refundable_fees
    order = order.model_copy(update={"refunded_total": refunded})
    assert _actions(order, event)["refund"].reason_type == "nothing-to-refund"


def test_refundable_total_subtracts_refunded_pending_and_kept_fees() -> None:
    event, types, _ = make_event(policy=EventPolicy(refund_service_fees=False))
    order = make_order(event, types, tickets=3, service_fee=300)  # 3 x 35.00 + 3.00 fee
    assert order.paid_total.amount == 10800
    order = order.model_copy(
        update={"refunded_total": order.refunded_total.model_copy(update={"amount": 3500}),
                "pending_refund_total": order.pending_refund_total.model_copy(update={"amount": 1000})}
    )
    assert order.refundable_total.amount == 10800 - 3500 - 1000 - 300


def test_used_ticket_is_still_listed_but_not_valid_for_scan_reset() -> None:
    event, types, _ = make_event()
    order = make_order(event, types)
    used = order.tickets[0].model_copy(update={"scan_state": ScanState.SCANNED_IN})
    assert used.used and used.is_valid


def test_fully_refunded_order_keeps_its_receipt_contact_and_cancel_but_nothing_else() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, service_fee=0)
    refunded = order.model_copy(
        update={
            "status": OrderStatus.REFUNDED,
            "refunded_total": order.paid_total,
            "tickets": [t.model_copy(update={"state": TicketState.REFUNDED}) for t in order.tickets],
        }
    )
    acts = _actions(refunded, event)
    assert {n for n, a in acts.items() if a.enabled} == {
        "cancel", "edit-contact", "send-receipt", "download-receipt", "add-comment",
    }  # fmt: skip
    assert acts["refund"].reason_type == "nothing-to-refund"  # not "the order is refunded": it says why
    assert acts["resend"].reason_type == "order-refunded"


def _two_slot_order(status: OrderStatus = OrderStatus.PAID):
    """One ticket in the evening slot and one in the late slot; the payment pending when reserved."""
    event, types, slots = make_event()
    order = make_order(event, types, tickets=1, slot=slots[0].id, status=status)
    late = make_order(event, types, tickets=1, slot=slots[1].id).tickets[0].model_copy(
        update={"order_code": order.code})
    return event, slots, order.model_copy(update={"tickets": [*order.tickets, late]})


@pytest.mark.parametrize(("slot", "ticket_slot", "expected"), [
    (None, None, None),
    ("evt_concert_eve", None, None),
    ("evt_concert_eve", "evt_concert_late", None),
    ("evt_concert_eve", "evt_concert_eve", "time-slot-cancelled"),
])
def test_slot_called_off_refusal(slot: str | None, ticket_slot: str | None, expected: str | None) -> None:
    event, _, _ = make_event()
    marked = event.model_copy(update={"cancelled_time_slots": [slot] if slot else []})
    refusal = slot_called_off_refusal(marked, ticket_slot)
    assert (refusal.type if refusal else None) == expected
    cancelled = event.model_copy(update={"cancelled": True})
    assert slot_called_off_refusal(cancelled, ticket_slot).type == "event-cancelled"  # type: ignore[union-attr]


@pytest.mark.parametrize("marked", ["evt_concert_eve", "evt_concert_late"])
def test_an_order_with_a_ticket_in_a_cancelled_slot_is_called_off_whole(marked: str) -> None:
    event, _, order = _two_slot_order()
    refusal = called_off_refusal(order, event.model_copy(update={"cancelled_time_slots": [marked]}))
    assert refusal is not None and refusal.type == "time-slot-cancelled"
    assert called_off_refusal(order, event.model_copy(update={"cancelled_time_slots": ["evt_other"]})) is None


@pytest.mark.parametrize(("called_off", "expected"), [
    ({"cancelled": True}, "event-cancelled"), ({"cancelled_time_slots": ["evt_concert_eve"]}, "time-slot-cancelled"),
])
def test_the_actions_list_shows_an_order_being_called_off(called_off: dict[str, object], expected: str) -> None:
    event, slots, paid = _two_slot_order()
    marked = event.model_copy(update=called_off)
    acts = {a.name: a for a in available_actions(paid, marked, slots)}
    for name in ("set-scan-status", "reschedule", "transfer"):
        assert (acts[name].enabled, acts[name].reason_type) == (False, expected), name
    assert acts["cancel"].enabled  # what the cancellation run does, an agent may do first
    assert {a.name for a in available_actions(paid, event, slots) if a.enabled} >= {"set-scan-status", "reschedule"}

    _, _, reserved = _two_slot_order(OrderStatus.RESERVED)
    acts = {a.name: a for a in available_actions(reserved, marked, slots)}
    assert (acts["mark-paid"].reason_type, acts["extend-deadline"].reason_type) == (expected, expected)
    assert {a.name for a in available_actions(reserved, event, slots) if a.enabled} >= {"mark-paid", "extend-deadline"}


def test_expiry_asks_without_the_event_so_a_called_off_reservation_still_expires() -> None:
    event, _, reserved = _two_slot_order(OrderStatus.RESERVED)
    marked = event.model_copy(update={"cancelled_time_slots": ["evt_concert_late"]})
    assert reservation_refusal(reserved) is None
    assert reservation_refusal(reserved, marked).type == "time-slot-cancelled"  # type: ignore[union-attr]
    assert reservation_refusal(reserved, event) is None
