"""`ticketops orders reserve|extend-deadline|mark-paid` against the real API, workers and Temporal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.cli.conftest import Cli, lines, ok, refused
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


async def test_reservations_due(cli: Cli) -> None:
    _, soon = await cli.order(tickets=1, method=PaymentMethod.INVOICE, status=OrderStatus.RESERVED)
    _, later = await cli.order(tickets=1, method=PaymentMethod.INVOICE, status=OrderStatus.RESERVED)
    ok(await cli.run("orders", "reserve", soon.code, "--days", "1"))
    ok(await cli.run("orders", "reserve", later.code, "--days", "30"))
    for _ in range(50):  # visibility is eventually consistent
        listed = ok(await cli.run("reservations", "due", "--within-hours", "48", role=Role.SUPPORT))
        if soon.code in listed:
            break
        await asyncio.sleep(0.2)
    assert lines(listed, soon.code, f"reservation/{soon.code}") and later.code not in listed
    assert "reservation(s) due within 48 h" in listed
    wider = ok(await cli.run("reservations", "due", "--within-hours", str(24 * 40)))
    for _ in range(50):
        if later.code in wider:
            break
        await asyncio.sleep(0.2)
        wider = ok(await cli.run("reservations", "due", "--within-hours", str(24 * 40)))
    assert wider.index(soon.code) < wider.index(later.code)  # soonest first
    bad = await cli.run("reservations", "due", "--within-hours", "0")
    assert bad.exit_code == 2 and "--within-hours" in bad.stderr, bad.output
