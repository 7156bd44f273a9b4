"""Cancelling orders and tickets: effects, refund option, refusals (pure functions, no store)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.builders import NOW, make_event, make_order
from ticketing.cancellation import Cancellation, CancelRequest, RefundDecision, cancel_order, refund_id_for
from ticketing.errors import ActionNotAllowed, DomainError, NotFound
from ticketing.inventory import InventoryDelta
from ticketing.models import Event, EventPolicy, Order, Personalisation, RefundKind
from ticketing.money import Money
from ticketing.processors import CAPABILITIES
from ticketing.refunds import RefundRequest, quote_refund
from ticketing.states import OrderStatus, PaymentStatus, TicketState

OP = "cancel/ORDER/key-1"


def _cancel(order: Order, event: Event, **kw: Any) -> Cancellation:
    request = CancelRequest(reason=kw.pop("reason", "event moved"), **kw)
    return cancel_order(order, event, request, actor="agent-1", now=NOW, operation_id=OP)


def _tickets(order: Order, state: TicketState, *indexes: int) -> Order:
    tickets = [t.model_copy(update={"state": state}) if i in indexes else t for i, t in enumerate(order.tickets)]
    return order.model_copy(update={"tickets": tickets})


def test_whole_order_is_cancelled_tickets_invalidated_and_seats_released() -> None:
    event, types, slots = make_event()
    order = make_order(event, types, tickets=2, vip=1, slot=slots[0].id)
    plan = _cancel(order, event)
    assert plan.order.status is OrderStatus.CANCELLED
    assert {t.state for t in plan.order.tickets} == {TicketState.CANCELLED}
    assert plan.whole_order and plan.ticket_ids == [t.id for t in order.tickets]
    assert plan.inventory == [
        InventoryDelta(ticket_type_id=types[0].id, time_slot_id=slots[0].id, delta=-2),
        InventoryDelta(ticket_type_id=types[1].id, time_slot_id=slots[0].id, delta=-1),
    ]
    assert plan.order.payment.status is PaymentStatus.SUCCEEDED and not plan.payment_voided
    assert [h.type for h in plan.history] == ["order-cancelled"] + ["item-canceled"] * 3 + ["item-invalidated"] * 3
    summary = plan.history[0]
    assert summary.data["refund"] == "none" and summary.data["operation_id"] == OP
    assert plan.refund is RefundDecision.NOT_REQUESTED and plan.refund_quote is None
    assert all(h.data["reason"] == "cancelled" for h in plan.history if h.type == "item-invalidated")
    assert len({h.dedupe_key for h in plan.history}) == len(plan.history)


def test_refund_option_is_priced_on_the_cancelled_order_so_the_child_quote_matches() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2)  # 2 x 35.00 + 2.50 service fee (kept)
    plan = _cancel(order, event, refund=True)
    assert plan.refund is RefundDecision.REQUESTED
    quote = plan.refund_quote
    assert quote is not None and quote.kind is RefundKind.FULL and quote.amount.amount == 7000
    saved = plan.order.model_copy(update={"version": order.version + 1})
    again = quote_refund(saved, event, RefundRequest(kind=RefundKind.FULL, reason="event moved"),
                         CAPABILITIES[order.payment.processor])
    assert again.quote_hash == quote.quote_hash
    assert plan.history[0].data["refund"] == "requested"
    assert plan.history[0].data["refund_id"] == refund_id_for(OP)


def test_reserved_order_voids_its_payment_and_refunds_nothing() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, status=OrderStatus.RESERVED)
    plan = _cancel(order, event, refund=True)
    assert plan.order.status is OrderStatus.CANCELLED
    assert plan.order.payment.status is PaymentStatus.VOIDED and plan.payment_voided
    assert plan.refund is RefundDecision.NOTHING_TO_REFUND
    assert plan.refund_refusal is not None and plan.refund_refusal.type == "payment-not-settled"
    assert plan.history[0].data["refund"] == "none"
    assert plan.history[0].data["payment"] == "voided"


def test_free_order_has_nothing_to_refund() -> None:
    from ticketing.models import PaymentMethod

    event, types, _ = make_event()
    plan = _cancel(make_order(event, types, method=PaymentMethod.FREE), event, refund=True)
    assert plan.refund is RefundDecision.NOTHING_TO_REFUND


def test_partly_refunded_order_refunds_what_is_left_and_cancels_the_refunded_tickets() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2)
    order = _tickets(order, TicketState.REFUNDED, 0).model_copy(update={"refunded_total": Money(amount=3500,
                                                                                                 currency="EUR")})
    plan = _cancel(order, event, refund=True)
    assert {t.state for t in plan.order.tickets} == {TicketState.CANCELLED}
    assert plan.inventory[0].delta == -2  # the refunded ticket still held its seat
    assert plan.refund_quote is not None and plan.refund_quote.amount.amount == 3500


def test_single_tickets_need_the_event_policy() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=3)
    with pytest.raises(ActionNotAllowed) as info:
        _cancel(order, event, ticket_ids=[order.tickets[0].id])
    assert info.value.type == "item-cancellation-not-allowed"
    # Listing every ticket is cancelling the order, which is always allowed.
    assert _cancel(order, event, ticket_ids=[t.id for t in order.tickets]).whole_order


def test_single_ticket_cancellation_where_allowed() -> None:
    event, types, _ = make_event(policy=EventPolicy(allow_item_cancellation=True))
    order = make_order(event, types, tickets=3)
    plan = _cancel(order, event, ticket_ids=[order.tickets[1].id], refund=True)
    assert not plan.whole_order and plan.order.status is OrderStatus.PAID
    assert [t.state for t in plan.order.tickets] == [TicketState.VALID, TicketState.CANCELLED, TicketState.VALID]
    assert [h.type for h in plan.history] == ["item-canceled", "item-invalidated"]
    assert plan.inventory == [InventoryDelta(ticket_type_id=types[0].id, time_slot_id=None, delta=-1)]
    quote = plan.refund_quote
    assert quote is not None and quote.kind is RefundKind.AMOUNT and quote.amount.amount == 3500


@pytest.mark.parametrize(
    ("status", "type_"),
    [(OrderStatus.CANCELLED, "order-already-cancelled"), (OrderStatus.EXPIRED, "order-expired")],
)
def test_refused_by_status(status: OrderStatus, type_: str) -> None:
    event, types, _ = make_event()
    with pytest.raises(ActionNotAllowed) as info:
        _cancel(make_order(event, types, status=status), event)
    assert info.value.type == type_


def test_ticket_in_transfer_blocks_cancellation() -> None:
    event, types, _ = make_event()
    order = make_order(event, types, tickets=2)
    moving = [order.tickets[0].model_copy(update={"in_transfer": True}), order.tickets[1]]
    with pytest.raises(ActionNotAllowed) as info:
        _cancel(order.model_copy(update={"tickets": moving}), event)
    assert info.value.type == "ticket-in-transfer"


def test_bad_ticket_lists() -> None:
    event, types, _ = make_event(policy=EventPolicy(allow_item_cancellation=True))
    order = make_order(event, types, tickets=3)
    with pytest.raises(NotFound) as missing:
        _cancel(order, event, ticket_ids=["tkt_nope"])
    assert missing.value.type == "ticket-not-found"
    with pytest.raises(DomainError) as twice:
        _cancel(order, event, ticket_ids=[order.tickets[0].id] * 2)
    assert twice.value.type == "duplicate-tickets"
    cancelled = _tickets(order, TicketState.CANCELLED, 0)
    with pytest.raises(ActionNotAllowed) as again:
        _cancel(cancelled, event, ticket_ids=[order.tickets[0].id])
    assert again.value.type == "ticket-already-cancelled"
    reissued = _tickets(order, TicketState.REISSUED, 0)
    with pytest.raises(ActionNotAllowed) as invalid:
        _cancel(reissued, event, ticket_ids=[order.tickets[0].id])
    assert invalid.value.type == "ticket-invalid"


def test_personalisation_is_kept_on_cancelled_tickets() -> None:
    event, types, _ = make_event(personalised=True)
    order = make_order(event, types, tickets=0, vip=1)
    holder = Personalisation(name="Grace Hopper", email="grace@example.com")
    order = order.model_copy(update={"tickets": [order.tickets[0].model_copy(update={"personalisation": holder})]})
    plan = _cancel(order, event)
    assert plan.order.tickets[0].personalisation == holder
