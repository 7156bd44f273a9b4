"""`ticketops refunds ...`: preview, confirm (or not), and finance's follow-up, on a manual (invoice) refund."""

from __future__ import annotations

import uuid

from tests.builders import make_event, make_order
from tests.cli.conftest import Cli, lines, ok, refused
from tests.harness import seed
from ticketing.models import PaymentMethod
from ticketing.roles import Role
from ticketing.states import TicketState


async def test_refund_request_with_yes_then_finance_marks_it_refunded(cli: Cli) -> None:
    _, order = await cli.order(tickets=2, method=PaymentMethod.INVOICE)
    code = order.code
    preview = ok(await cli.run("refunds", "preview", code, "-t", order.tickets[0].id, "--reason", "one cannot come",
                               role=Role.FINANCE))
    assert lines(preview, "Refund", "EUR 35.00", "tickets")
    assert lines(preview, "Tickets invalidated", order.tickets[0].id)
    assert lines(preview, "manual", "finance pays it")

    declined = ok(await cli.run("refunds", "request", code, "--full", "--reason", "invoice cancelled",
                                role=Role.FINANCE, input="n\n"))
    assert "Refund EUR 70.00? [y/N]" in declined and "nothing was requested" in declined
    assert (await cli.h.http.get("/refunds", params={"order": code})).json() == []

    bad = await cli.run("refunds", "request", code, "--amount", "12.505", "--reason", "goodwill", "--yes")
    refused(bad, "bad-amount: 12.505 is not a positive EUR amount")

    requested = ok(await cli.run("refunds", "request", code, "--full", "--reason", "invoice cancelled", "--yes",
                                 "--wait", role=Role.FINANCE, name="finance-1"))
    assert lines(requested, "Refund", "EUR 70.00", "full")
    assert f"started operation refund/{code}/" in requested
    refund_id = next(line.split(": ")[1] for line in requested.splitlines() if "refund id:" in line).strip()
    # --wait ends where the agent's part does: the refund now waits for finance, maybe for days.
    assert lines(requested, f"refund {refund_id} is awaiting-manual: Waiting for finance")

    listed = ok(await cli.run("refunds", "list", "--status", "awaiting-manual", role=Role.SUPPORT))
    assert lines(listed, refund_id, code, "full", "awaiting-manual", "EUR 70.00", "manual")
    assert lines(listed, "finance to pay") and "finance-1" in listed
    api_list = (await cli.h.http.get("/refunds", params={"order": code})).json()
    assert [r["waiting_for"] for r in api_list] == ["finance to pay out by hand and mark it refunded"]
    shown = ok(await cli.run("refunds", "show", refund_id))
    [status_line] = lines(shown, "Status")
    assert "awaiting-manual" in status_line and "(" not in status_line and "finance" not in status_line
    assert lines(shown, "Waiting for", "finance")
    operation = next(line for line in requested.splitlines() if "started operation" in line).split()[2]
    waiting = await cli.run("operations", "watch", operation, "--timeout", "1")
    assert waiting.exit_code == 3, waiting.output  # still running: it waits for finance, and says so
    assert lines(waiting.stdout, operation, "finance")
    refused(await cli.run("refunds", "retry", refund_id, role=Role.FINANCE), "refund-not-retryable: ")

    marked = ok(await cli.run("refunds", "mark-refunded", refund_id, "--reference", "SEPA-77",
                              role=Role.FINANCE, name="finance-9"))
    assert lines(marked, "Status", "refunded") and lines(marked, "Confirmed by", "finance-9")
    assert lines(marked, "Manual reference", "SEPA-77")
    watched = ok(await cli.run("operations", "watch", operation))
    assert lines(watched, "status", "refunded")
    assert lines(watched, "amount", "EUR 70.00") and "7000" not in watched and not lines(watched, "currency")


async def test_the_quote_names_a_ticket_transferred_away(cli: Cli) -> None:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    order = make_order(event, types, tickets=2, method=PaymentMethod.INVOICE)
    gone, left = order.tickets
    gone = gone.model_copy(update={"state": TicketState.TRANSFERRED, "replaced_by": "tkt_theirs"})
    await seed(cli.h.store, event, types, slots, [order.model_copy(update={"tickets": [gone, left]})])
    preview = ok(await cli.run("refunds", "preview", order.code, "--full", "--reason", "cannot come",
                               role=Role.FINANCE))
    assert lines(preview, "Refund", "EUR 35.00", "full")
    assert lines(preview, "Not refunded", gone.id, "EUR 35.00", "ticket-transferred")
    refused(await cli.run("refunds", "preview", order.code, "-t", gone.id, "--reason", "cannot come"),
            "ticket-transferred")
