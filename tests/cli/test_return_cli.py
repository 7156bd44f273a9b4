"""`ticketops orders return|return-decline|return-approve` against the real API, workers and Temporal."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta

from tests.builders import make_event, make_order
from tests.cli.conftest import Cli, ok, refused
from tests.harness import seed
from ticketing.models import PaymentMethod
from ticketing.returns import LINK_PURPOSE as RETURN_PURPOSE
from ticketing.roles import Role
from ticketing.signed_links import verify
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


async def test_return_link(cli: Cli) -> None:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    event = event.model_copy(update={"starts_at": datetime.now(UTC) + timedelta(days=20)})
    order = make_order(event, types, tickets=1)
    await seed(cli.h.store, event, types, slots, [order])
    printed = ok(await cli.run("orders", "return-link", order.code, role=Role.SUPPORT))
    assert "Return link, valid until" in printed
    match = re.search(r"/returns/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", printed.replace("\n", ""))
    assert match, printed
    secret = cli.h.settings.signing_secret.get_secret_value()
    assert verify(secret, RETURN_PURPOSE, match.group(1), now=datetime.now(UTC))[0] == order.code
    refused(await cli.run("orders", "return-link", "NOPE00"), "order-not-found")
    _, started = await cli.order(tickets=1)  # the builders' event started in the past
    refused(await cli.run("orders", "return-link", started.code), "event-started")
