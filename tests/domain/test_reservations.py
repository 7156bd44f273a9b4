"""The reservation's deadline against an order that left `reserved` some other way."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.builders import make_event, make_order
from ticketing.errors import ActionNotAllowed
from ticketing.reservations import cancelled_while_waiting, expire_reservation
from ticketing.states import OrderStatus

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "over"),
    [(OrderStatus.CANCELLED, True), (OrderStatus.RESERVED, False), (OrderStatus.PAID, False),
     (OrderStatus.EXPIRED, False)],
)  # fmt: skip
def test_only_a_cancelled_order_ends_its_reservation_without_an_expiry(status: OrderStatus, over: bool) -> None:
    event, types, slots = make_event()
    order = make_order(event, types, tickets=1, slot=slots[0].id, status=status)
    assert cancelled_while_waiting(order) is over


def test_a_paid_order_is_never_expired() -> None:
    event, types, slots = make_event()
    order = make_order(event, types, tickets=1, slot=slots[0].id, status=OrderStatus.PAID)
    with pytest.raises(ActionNotAllowed) as refused:
        expire_reservation(order, now=NOW, operation_id="reservation/X")
    assert refused.value.type == "order-paid"
