"""`ticketops orders return|return-decline|return-approve` against the real API, workers and Temporal."""

from __future__ import annotations

import asyncio

from tests.cli.conftest import Cli, ok, refused
from ticketing.models import PaymentMethod
from ticketing.roles import Role
from ticketing.store.orders import load_order


async def test_return_requested_then_declined(cli: Cli) -> None:
    _, order = await cli.order(tickets=1, method=PaymentMethod.INVOICE)
    assert f"return/{order.code}/" in ok(await cli.run("orders", "return", order.code, "-r", "cannot come",
                                                       role=Role.SUPPORT))
    for _ in range(100):
        async with cli.h.store.transaction() as conn:
            if (await load_order(conn, order.code)).status.value == "return-requested":
                break
        await asyncio.sleep(0.1)
    refused(await cli.run("orders", "return-approve", order.code, role=Role.SUPPORT), "forbidden")
    declined = ok(await cli.run("orders", "return-decline", order.code, "-r", "too close to the event"))
    assert f"order {order.code}: return declined" in declined
