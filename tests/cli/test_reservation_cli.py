"""`ticketops orders reserve|extend-deadline|mark-paid` against the real API, workers and Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.cli.conftest import Cli, ok, refused
from ticketing.models import PaymentMethod
from ticketing.roles import Role
from ticketing.states import OrderStatus


async def test_reserve_extend_and_mark_paid(cli: Cli) -> None:
    _, order = await cli.order(tickets=1, method=PaymentMethod.INVOICE, status=OrderStatus.RESERVED)
    assert f"reservation/{order.code}" in ok(await cli.run("orders", "reserve", order.code, "--days", "3"))
    later = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    extended = ok(await cli.run("orders", "extend-deadline", order.code, later.isoformat()))
    assert f"order {order.code}: payment due" in extended
    refused(await cli.run("orders", "mark-paid", order.code, role=Role.SUPPORT), "forbidden")
    assert f"order {order.code}: paid" in ok(await cli.run("orders", "mark-paid", order.code, "--reference", "INV-1",
                                                          role=Role.FINANCE))
