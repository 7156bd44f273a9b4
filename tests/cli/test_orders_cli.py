"""`ticketops orders ...`, `scan` and `operations watch` against the real API, workers and Temporal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Cli, lines, ok, refused
from ticketing.roles import Role
from ticketing.states import TicketState
from ticketing.store.orders import load_history, load_order, save_order


async def test_search_and_show_print_the_order_and_why_an_action_is_disabled(cli: Cli) -> None:
    event, order = await cli.order(tickets=2)
    found = ok(await cli.run("orders", "search", "ada@example.com", "--event", event.id, role=Role.SUPPORT))
    assert lines(found, order.code, event.id, "paid", "ada@example.com", "EUR 72.50")
    assert "1 order(s)" in found
    assert "no orders found" in ok(await cli.run("orders", "search", "nobody@example.com"))

    shown = ok(await cli.run("orders", "show", order.code.lower(), role=Role.SUPPORT))
    assert f"Order {order.code}" in shown
    assert lines(shown, "Contact", "Ada Lovelace", "ada@example.com")
    assert lines(shown, "paid EUR 72.50", "refundable EUR 70.00")
    for ticket in order.tickets:
        assert lines(shown, ticket.id, ticket.barcode, "General admission", "valid", "unscanned")
    assert lines(shown, "order-created", "test")
    assert lines(shown, "resend", "yes")
    assert lines(
        shown, "open-personalisation", "no",
        "personalisation-not-required: no valid ticket of this order requires personal data",
    )


async def test_resend_with_wait_follows_the_operation_to_completed(cli: Cli) -> None:
    _, order = await cli.order(tickets=2)
    result = await cli.run("orders", "resend", order.code, "--wait", "--idempotency-key", "cli-1", name="agent-7")
    out = ok(result)
    assert f"started operation resend/{order.code}/cli-1" in out
    assert f"completed resend/{order.code}/cli-1 (ResendOrder)" in out
    assert lines(out, "ticket_count", "2") and lines(out, "delivery", "sent")
    assert [m["To"] for m in cli.h.sink.messages] == ["ada@example.com"]
    async with cli.h.store.transaction() as conn:
        history = await load_history(conn, order.code)
    assert [h.actor for h in history if h.type == "tickets-resent"] == ["agent-7"]

    # The same key again is the same operation, not a second email; `operations watch` reads it back.
    again = ok(await cli.run("orders", "resend", order.code, "--idempotency-key", "cli-1"))
    assert f"operations watch resend/{order.code}/cli-1" in again
    watched = ok(await cli.run("operations", "watch", f"resend/{order.code}/cli-1"))
    assert "completed" in watched
    assert len(cli.h.sink.messages) == 1


async def test_a_refused_action_exits_2_and_prints_the_problem_type(cli: Cli) -> None:
    _, order = await cli.order()
    async with cli.h.store.transaction() as conn:
        current = await load_order(conn, order.code)
        cancelled = [t.model_copy(update={"state": TicketState.CANCELLED}) for t in current.tickets]
        await save_order(conn, current, current.model_copy(update={"tickets": cancelled}), [])

    resend = await cli.run("orders", "resend", order.code, "--wait")
    refused(resend, "no-valid-tickets: the order has no valid tickets to deliver")
    assert resend.stderr.strip() == "no-valid-tickets: the order has no valid tickets to deliver"
    assert "started" not in resend.stdout and cli.h.sink.messages == []

    missing = await cli.run("orders", "show", "NOSUCH")
    refused(missing, "order-not-found: ")
    forbidden = await cli.run("refunds", "preview", order.code, "--full", "--reason", "cannot come", role=Role.SUPPORT)
    refused(forbidden, "forbidden: this needs the finance role; you have support")
    invalid = await cli.run("orders", "cancel", order.code, "--reason", "x")
    refused(invalid, "validation-error: the request is not valid (body.reason")


async def test_without_a_key_or_an_api_the_cli_says_so(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, order = await cli.order()
    no_key = await cli.run("orders", "show", order.code, key=None)
    refused(no_key, "no-api-key: no API key: pass --api-key, set TICKETOPS_API_KEY")

    bad_key = await cli.run("orders", "show", order.code, key="tk_000000000000_" + "x" * 43)
    refused(bad_key, "unauthorized: ")

    monkeypatch.chdir(tmp_path)
    no_file = await cli.run("orders", "show", order.code, "--role", "support", key=None)
    refused(no_file, "no-api-key: --role support reads var/dev-api-keys.json, which is missing")
    (tmp_path / "var").mkdir()
    key = await cli.h.key_for("dev-support", Role.SUPPORT)
    (tmp_path / "var" / "dev-api-keys.json").write_text(json.dumps({"support": key}))
    assert order.code in ok(await cli.run("orders", "show", order.code, "--role", "support", key=None))
    # --role beats the (admin) key in the environment: the support key may not preview refunds.
    as_support = await cli.run("refunds", "preview", order.code, "--full", "--reason", "nope", "--role", "support")
    refused(as_support, "forbidden: this needs the finance role; you have support")

    down = await cli.run("orders", "show", order.code, "--api-url", "http://127.0.0.1:9")
    refused(down, "unreachable: cannot reach the API at http://127.0.0.1:9", code=1)


async def test_corrections_comments_and_the_gate(cli: Cli) -> None:
    _, order = await cli.order(tickets=2)
    first, second = order.tickets
    edited = ok(await cli.run("orders", "edit-contact", order.code, "--name", "Ada King", role=Role.SUPPORT))
    assert f"order {order.code}: changed name" in edited
    nothing = await cli.run("orders", "edit-ticket", order.code, first.id)
    refused(nothing, "nothing-to-change: give at least one of --name")
    assert "changed name" in ok(await cli.run("orders", "edit-ticket", order.code, first.id, "--name", "Grace"))
    assert "(buyer)" in ok(await cli.run("orders", "comment", order.code, "called about parking", "--buyer"))

    admitted = ok(await cli.run("scan", first.barcode, "--access-point", "north", role=Role.ADMIN))  # gate: admin
    assert admitted.startswith(f"accepted {order.code} {first.id} (scanned-in)")
    again = await cli.run("scan", first.barcode)
    refused(again, "rejected ")
    blacklisted = ok(await cli.run("orders", "scan-status", order.code, "blacklisted", "--ticket", second.id))
    assert lines(blacklisted, second.id, "invalid: blacklisted")

    shown = ok(await cli.run("orders", "show", order.code))
    assert lines(shown, "Contact", "Ada King")
    assert lines(shown, first.id, "scanned-in", "Grace")
    assert lines(shown, "buyer", "agent-cli", "called about parking")
    assert lines(shown, "contact-edited", "agent-cli", 'fields=["name"]')


async def test_events_list_counts_orders_by_status_and_search_filters_by_status(cli: Cli) -> None:
    event, order = await cli.order(tickets=1)
    listed = ok(await cli.run("events", "list", role=Role.SUPPORT))
    assert lines(listed, event.id, "1", "0", "on sale")
    resp = await cli.h.http.get("/events")
    [mine] = [e for e in resp.json() if e["id"] == event.id]
    assert mine["orders"]["paid"] == 1 and mine["orders"]["cancelled"] == 0 and mine["orders_total"] == 1

    assert order.code in ok(await cli.run("orders", "search", "ada", "--status", "paid"))
    assert "no orders found" in ok(await cli.run("orders", "search", "ada", "--status", "cancelled"))
    refused(await cli.run("orders", "search", "ada", "--status", "lost"), "validation-error")
