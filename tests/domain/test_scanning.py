"""Bulk scan-status operations and the gate's admit/reject, as pure domain functions."""

from __future__ import annotations

import pytest

from tests.builders import NOW, make_event, make_order
from ticketing.errors import ActionNotAllowed, NotFound
from ticketing.models import Event, Order
from ticketing.scanning import ScanStatus, admit, set_scan_status
from ticketing.states import OrderStatus, ScanState, TicketState

EVENT, TYPES, _ = make_event()
T, S, B = TicketState, ScanState, ScanStatus


def _order(*states: TicketState, scan: ScanState = S.UNSCANNED, status: OrderStatus = OrderStatus.PAID) -> Order:
    order = make_order(EVENT, TYPES, tickets=len(states), status=status)
    pairs = zip(order.tickets, states, strict=True)
    tickets = [t.model_copy(update={"state": s, "scan_state": scan}) for t, s in pairs]
    return order.model_copy(update={"tickets": tickets})


def _ids(order: Order) -> list[str]:
    return [t.id for t in order.tickets]


@pytest.mark.parametrize(
    ("state", "scan", "status", "expected_state", "expected_scan"),
    [
        (T.BLACKLISTED, S.SCANNED_IN, B.UNSCANNED, T.VALID, S.UNSCANNED),
        (T.VALID, S.SCANNED_OUT, B.UNSCANNED, T.VALID, S.UNSCANNED),
        (T.VALID, S.UNSCANNED, B.SCANNED_IN, T.VALID, S.SCANNED_IN),
        (T.VALID, S.UNSCANNED, B.SCANNED_OUT, T.VALID, S.SCANNED_OUT),
        (T.VALID, S.SCANNED_OUT, B.SCANNED_IN, T.VALID, S.SCANNED_IN),
        (T.VALID, S.SCANNED_IN, B.BLACKLISTED, T.BLACKLISTED, S.SCANNED_IN),
    ],
)
def test_bulk_status(
    state: TicketState, scan: ScanState, status: ScanStatus, expected_state: TicketState, expected_scan: ScanState
) -> None:
    order = _order(state, scan=scan)
    after, changed = set_scan_status(order, EVENT, _ids(order), status)
    assert changed == _ids(order)
    assert (after.tickets[0].state, after.tickets[0].scan_state) == (expected_state, expected_scan)


def test_a_ticket_in_that_status_already_is_unchanged() -> None:
    order = _order(TicketState.VALID, TicketState.VALID)
    after, changed = set_scan_status(order, EVENT, [order.tickets[0].id, order.tickets[0].id], ScanStatus.UNSCANNED)
    assert changed == [] and after == order


@pytest.mark.parametrize("final", [TicketState.CANCELLED, TicketState.REFUNDED, TicketState.REISSUED])
def test_final_tickets_are_refused_and_nothing_changes(final: TicketState) -> None:
    order = _order(TicketState.VALID, final)
    with pytest.raises(ActionNotAllowed) as info:
        set_scan_status(order, EVENT, _ids(order), ScanStatus.SCANNED_IN)
    assert info.value.type == "ticket-invalid"
    assert info.value.extra["ticket_id"] == order.tickets[1].id


def test_other_refusals() -> None:
    blacklisted = _order(TicketState.BLACKLISTED)
    with pytest.raises(ActionNotAllowed) as info:
        set_scan_status(blacklisted, EVENT, _ids(blacklisted), ScanStatus.SCANNED_IN)
    assert info.value.type == "ticket-blacklisted"
    with pytest.raises(NotFound) as missing:
        set_scan_status(blacklisted, EVENT, ["tkt_nope"], ScanStatus.UNSCANNED)
    assert missing.value.type == "ticket-not-found"
    reserved = _order(TicketState.VALID, status=OrderStatus.RESERVED)
    with pytest.raises(ActionNotAllowed) as unpaid:
        set_scan_status(reserved, EVENT, _ids(reserved), ScanStatus.SCANNED_IN)
    assert unpaid.value.type == "order-reserved"


def test_gate_admits_once_then_again_after_scanning_out() -> None:
    order = _order(TicketState.VALID)
    barcode = order.tickets[0].barcode
    order, first = admit(order, EVENT, barcode, at=NOW, access_point="north")
    assert (first.result, first.scan_state, first.ticket_id) == ("accepted", "scanned-in", order.tickets[0].id)
    order, second = admit(order, EVENT, barcode, at=NOW, access_point="north")
    assert (second.result, second.reason_type) == ("rejected", "already-scanned-in")
    order, _ = set_scan_status(order, EVENT, _ids(order), ScanStatus.SCANNED_OUT)
    order, third = admit(order, EVENT, barcode, at=NOW, access_point=None)
    assert third.result == "accepted"
    assert [(s.result, s.reason, s.access_point) for s in order.tickets[0].scans] == [
        ("accepted", None, "north"),
        ("rejected", "ticket is already scanned in", "north"),
        ("accepted", None, None),
    ]


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (TicketState.BLACKLISTED, "ticket is blacklisted"),
        (TicketState.REISSUED, "ticket was reissued"),
        (TicketState.CANCELLED, "ticket was cancelled"),
        (TicketState.REFUNDED, "ticket was refunded"),
        (TicketState.TRANSFERRED, "ticket was transferred"),
    ],
)
def test_gate_rejects_invalid_tickets_with_the_reason(state: TicketState, reason: str) -> None:
    order = _order(state)
    after, outcome = admit(order, EVENT, order.tickets[0].barcode, at=NOW, access_point=None)
    assert (outcome.result, outcome.reason, outcome.reason_type) == ("rejected", reason, state.reason)
    assert after.tickets[0].scan_state is ScanState.UNSCANNED
    assert [s.result for s in after.tickets[0].scans] == ["rejected"]


def test_gate_rejects_a_ticket_of_an_unpaid_order() -> None:
    order = _order(TicketState.VALID, status=OrderStatus.RESERVED)
    _, outcome = admit(order, EVENT, order.tickets[0].barcode, at=NOW, access_point=None)
    assert (outcome.result, outcome.reason_type) == ("rejected", "order-reserved")


def _called_off(kind: str) -> tuple[Order, Event, str]:
    """A paid order with a ticket in each slot; the event, or the order's first slot, called off."""
    eve, late = f"{EVENT.id}_eve", f"{EVENT.id}_late"
    order = make_order(EVENT, TYPES, tickets=1, slot=eve)
    other = make_order(EVENT, TYPES, tickets=1, slot=late)
    order = order.model_copy(update={"tickets": [*order.tickets, other.tickets[0].model_copy(
        update={"order_code": order.code})]})
    if kind == "event-cancelled":
        return order, EVENT.model_copy(update={"cancelled": True}), kind
    return order, EVENT.model_copy(update={"cancelled_time_slots": [eve]}), kind


@pytest.mark.parametrize("kind", ["event-cancelled", "time-slot-cancelled"])
def test_gate_rejects_every_ticket_of_an_order_being_called_off(kind: str) -> None:
    # The slot is marked; the cancellation run has not reached the order, so its tickets are still valid.
    order, event, expected = _called_off(kind)
    for ticket in order.tickets:  # the other slot's ticket too: the order is cancelled whole
        after, outcome = admit(order, event, ticket.barcode, at=NOW, access_point="north")
        assert (outcome.result, outcome.reason_type) == ("rejected", expected)
        assert outcome.reason
        assert after.ticket(ticket.id).scan_state is ScanState.UNSCANNED
        assert after.ticket(ticket.id).state is TicketState.VALID
        assert [(s.result, s.reason) for s in after.ticket(ticket.id).scans] == [("rejected", outcome.reason)]


def test_gate_admits_a_ticket_of_another_slot_s_order() -> None:
    order = make_order(EVENT, TYPES, tickets=1, slot=f"{EVENT.id}_late")
    event = EVENT.model_copy(update={"cancelled_time_slots": [f"{EVENT.id}_eve"]})
    _, outcome = admit(order, event, order.tickets[0].barcode, at=NOW, access_point=None)
    assert outcome.result == "accepted"


@pytest.mark.parametrize("kind", ["event-cancelled", "time-slot-cancelled"])
@pytest.mark.parametrize("status", list(ScanStatus))
def test_scan_status_is_refused_for_an_order_being_called_off(kind: str, status: ScanStatus) -> None:
    order, event, expected = _called_off(kind)
    with pytest.raises(ActionNotAllowed) as info:
        set_scan_status(order, event, _ids(order), status)
    assert info.value.type == expected
