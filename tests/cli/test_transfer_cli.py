"""`ticketops orders transfer` / `transfer-cancel` against the real API, workers and Temporal."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from tests.builders import make_event, make_order
from tests.cli.conftest import Cli, lines, ok, refused
from tests.harness import seed
from ticketing.models import Order
from ticketing.roles import Role
from ticketing.signed_links import verify
from ticketing.store.orders import load_order
from ticketing.transfers import MANAGE_PURPOSE


async def _future_order(cli: Cli) -> Order:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    event = event.model_copy(update={"starts_at": datetime.now(UTC) + timedelta(days=20)})
    order = make_order(event, types, tickets=1)
    await seed(cli.h.store, event, types, slots, [order])
    return order


async def test_transfer_then_cancel(cli: Cli) -> None:
    order = await _future_order(cli)
    ticket = order.tickets[0].id
    args = ("orders", "transfer", order.code, ticket, "--name", "Grace Hopper", "--email", "grace@example.com")
    assert f"transfer/{order.code}/{ticket}/" in ok(await cli.run(*args, role=Role.SUPPORT))
    await cli.h.sink.wait_for_messages(1)
    cancelled = ok(await cli.run("orders", "transfer-cancel", order.code, ticket, "-r", "wrong person"))
    assert f"transfer of ticket {ticket} on order {order.code}: cancelled" in cancelled
    async with cli.h.store.transaction() as conn:
        assert not (await load_order(conn, order.code)).tickets[0].in_transfer


async def test_transfer_refused_once_the_event_started(cli: Cli) -> None:
    _, order = await cli.order(tickets=1)  # the builders' event started in the past
    args = ("orders", "transfer", order.code, order.tickets[0].id, "--name", "Grace", "--email", "g@example.com")
    refused(await cli.run(*args), "event-started")


def _token(output: str, route: str) -> str:
    match = re.search(rf"/{route}/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", output.replace("\n", ""))
    assert match, output
    return match.group(1)


async def test_transfer_link_and_show(cli: Cli) -> None:
    order = await _future_order(cli)
    ticket = order.tickets[0].id
    printed = ok(await cli.run("orders", "transfer-link", order.code.lower(), ticket, role=Role.SUPPORT))
    assert "Transfer link, valid until" in printed
    secret = cli.h.settings.signing_secret.get_secret_value()
    subject, _ = verify(secret, MANAGE_PURPOSE, _token(printed, "transfers/start"), now=datetime.now(UTC))
    assert subject == f"{order.code}/{ticket}"
    refused(await cli.run("orders", "transfer-link", order.code, "tkt_nope"), "ticket-not-found")
    refused(await cli.run("orders", "transfer-show", order.code, ticket), "transfer-not-open")

    ok(await cli.run("orders", "transfer", order.code, ticket, "--name", "Grace", "--email", "grace@example.com"))
    await cli.h.sink.wait_for_messages(1)  # the offer is out: the transfer is open
    shown = ok(await cli.run("orders", "transfer-show", order.code, ticket, role=Role.SUPPORT))
    assert lines(shown, "Status", "offered") and lines(shown, "Operation", f"transfer/{order.code}/{ticket}/")
    assert "grace" not in shown.lower()  # the recipient is personal data: not printed


async def test_transfer_link_refused_once_the_event_started(cli: Cli) -> None:
    _, order = await cli.order(tickets=1)
    refused(await cli.run("orders", "transfer-link", order.code, order.tickets[0].id), "event-started")
