"""Reissue and reschedule as pure functions; the reschedule action's availability."""

from __future__ import annotations

import pytest

from tests.builders import NOW, make_event, make_order
from ticketing.errors import ActionNotAllowed, DomainError, NotFound
from ticketing.inventory import InventoryDelta
from ticketing.models import Event, Order, Personalisation, TimeSlot
from ticketing.policies.actions import Action, available_actions
from ticketing.reissue import Reissue, recorded, reissue_tickets, reschedule_tickets
from ticketing.states import OrderStatus, ScanState, TicketState

OP = "reissue/ORDER/k"


def _reissue(order: Order, event: Event, ids: list[str] | None = None) -> Reissue:
    return reissue_tickets(order, event, ids, actor="agent-1", now=NOW, operation_id=OP)


def _reschedule(
    order: Order, event: Event, slots: list[TimeSlot], slot_id: str, ids: list[str] | None = None
) -> Reissue:
    return reschedule_tickets(order, event, slots, ids, slot_id, actor="agent-1", now=NOW, operation_id=OP)


def test_reissue_all_valid_tickets_makes_new_rows_and_invalidates_the_old() -> None:
    event, types, slots = make_event(personalised=True)
    order = make_order(event, types, tickets=1, vip=1, slot=slots[0].id)
    holder = Personalisation(name="Grace Hopper", email="grace@example.com")
    order = order.model_copy(
        update={"tickets": [order.tickets[0], order.tickets[1].model_copy(update={"personalisation": holder})]}
    )
    plan = _reissue(order, event)
    assert len(plan.order.tickets) == 4
    old, new = plan.order.tickets[:2], plan.order.tickets[2:]
    assert [t.state for t in old] == [TicketState.REISSUED] * 2
    assert [t.replaced_by for t in old] == [t.id for t in new] == plan.new_ticket_ids
    for before, after in zip(order.tickets, new, strict=True):
        assert after.barcode != before.barcode and after.id != before.id
        assert (after.ticket_type_id, after.time_slot_id, after.price, after.personalisation) == (
            before.ticket_type_id, before.time_slot_id, before.price, before.personalisation
        )
        assert after.state is TicketState.VALID
    assert plan.inventory == []  # the seat passes from the old ticket to the new one
    assert [h.type for h in plan.history] == ["tickets-reissued", "item-invalidated", "item-invalidated"]
    assert recorded(plan.history, OP) == plan.replaced
    assert recorded(plan.history, "reissue/ORDER/other") is None
    assert [line.quantity for line in plan.order.lines] == [1, 1]  # reissued rows are not counted twice


def test_reissued_ticket_keeps_its_scan_state_and_a_used_ticket_cannot_be_rescheduled() -> None:
    event, types, slots = make_event()
    order = make_order(event, types, tickets=1, slot=slots[0].id)
    scanned = order.tickets[0].model_copy(update={"scan_state": ScanState.SCANNED_IN})
    inside = order.model_copy(update={"tickets": [scanned]})
    assert _reissue(inside, event).order.tickets[1].scan_state is ScanState.SCANNED_IN
    with pytest.raises(ActionNotAllowed) as used:
        _reschedule(inside, event, slots, slots[1].id)
    assert used.value.type == "ticket-used"


def test_reissue_selected_tickets_only() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=3)
    plan = _reissue(order, event, [order.tickets[1].id])
    assert [t.state for t in plan.order.tickets[:3]] == [TicketState.VALID, TicketState.REISSUED, TicketState.VALID]
    assert list(plan.replaced) == [order.tickets[1].id]


def test_reissue_refusals() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2)
    with pytest.raises(NotFound):
        _reissue(order, event, ["tkt_missing"])
    with pytest.raises(DomainError) as twice:
        _reissue(order, event, [order.tickets[0].id] * 2)
    assert twice.value.type == "duplicate-tickets"
    reissued = _reissue(order, event, [order.tickets[0].id]).order
    with pytest.raises(ActionNotAllowed) as invalid:
        _reissue(reissued, event, [order.tickets[0].id])
    assert invalid.value.type == "ticket-invalid"
    moving = order.model_copy(
        update={"tickets": [order.tickets[0].model_copy(update={"in_transfer": True}), order.tickets[1]]}
    )
    with pytest.raises(ActionNotAllowed) as transfer:
        _reissue(moving, event, [order.tickets[0].id])
    assert transfer.value.type == "ticket-in-transfer"
    for status in (OrderStatus.RESERVED, OrderStatus.CANCELLED):
        with pytest.raises(ActionNotAllowed) as refused:
            _reissue(make_order(event, types, status=status), event)
        assert refused.value.type == f"order-{status.value}"


def test_reschedule_moves_seats_between_slots_with_new_barcodes() -> None:
    event, types, slots = make_event()
    order = make_order(event, types, tickets=2, slot=slots[0].id)
    plan = _reschedule(order, event, slots, slots[1].id)
    new = plan.order.tickets[2:]
    assert {t.time_slot_id for t in new} == {slots[1].id}
    assert {t.barcode for t in new}.isdisjoint({t.barcode for t in order.tickets})
    assert plan.inventory == [
        InventoryDelta(ticket_type_id=types[0].id, time_slot_id=slots[0].id, delta=-2),
        InventoryDelta(ticket_type_id=types[0].id, time_slot_id=slots[1].id, delta=2),
    ]
    assert plan.history[0].type == "tickets-rescheduled"
    assert plan.history[0].data["time_slot_id"] == slots[1].id


def test_reschedule_refusals() -> None:
    event, types, slots = make_event()
    order = make_order(event, types, tickets=2, slot=slots[0].id)
    full = [slots[0], slots[1].model_copy(update={"sold": slots[1].capacity - 1})]
    with pytest.raises(ActionNotAllowed) as info:
        _reschedule(order, event, full, slots[1].id)
    assert info.value.type == "slot-full" and info.value.extra["available"] == 1
    assert _reschedule(order, event, full, slots[1].id, [order.tickets[0].id]).replaced  # one seat is enough for one
    _, _, other_slots = make_event(event_id="evt_other")
    with pytest.raises(DomainError) as foreign:
        _reschedule(order, event, [*slots, *other_slots], other_slots[0].id)
    assert foreign.value.type == "slot-not-in-event"
    with pytest.raises(ActionNotAllowed) as same:
        _reschedule(order, event, slots, slots[0].id)
    assert same.value.type == "ticket-already-in-slot"
    with pytest.raises(ActionNotAllowed) as single:
        _reschedule(order, event, slots[:1], slots[0].id)
    assert single.value.type == "single-time-slot"


def test_reschedule_action_shows_why_it_is_disabled() -> None:
    event, types, slots = make_event()
    paid = make_order(event, types, slot=slots[0].id)

    def action(order: Order, given: list[TimeSlot]) -> Action:
        return next(a for a in available_actions(order, event, given) if a.name == "reschedule")

    assert action(paid, slots).enabled
    one = action(paid, slots[:1])
    assert (one.enabled, one.reason_type, one.reason) == (
        False, "single-time-slot", "the event has fewer than two time slots"
    )
    reserved = action(make_order(event, types, status=OrderStatus.RESERVED), slots)
    assert reserved.reason_type == "order-reserved"


@pytest.mark.parametrize(("called_off", "expected"), [
    ({"cancelled": True}, "event-cancelled"),
    ({"cancelled_time_slots": ["evt_concert_late"]}, "time-slot-cancelled"),  # the target slot
    ({"cancelled_time_slots": ["evt_concert_eve"]}, "time-slot-cancelled"),  # the order's own slot
])
def test_reschedule_is_refused_into_or_out_of_a_called_off_slot(called_off: dict[str, object], expected: str) -> None:
    event, types, slots = make_event()
    order = make_order(event, types, tickets=2, slot=slots[0].id)
    marked = event.model_copy(update=called_off)
    with pytest.raises(ActionNotAllowed) as info:
        _reschedule(order, marked, slots, slots[1].id)
    assert info.value.type == expected
