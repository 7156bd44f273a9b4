"""`ticketops bulk deliver` and `event cancel`: start, watch the progress to the end, then the report."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from tests.cli.conftest import Cli, lines, ok, refused
from tests.e2e.bulk_support import buyers, event_with_orders
from ticketing.models import PaymentMethod


async def test_bulk_deliver_shows_progress_to_completion_and_the_report(cli: Cli, tmp_path: Path) -> None:
    event, _, _ = await event_with_orders(cli.h, buyers(3))
    result = await cli.run("bulk", "deliver", event.id, "--subject", "Doors open at 18:30", "--body", "See you.")
    out = ok(result)
    bulk_id = re.search(r"started bulk (bk_\w+)", out).group(1)  # type: ignore[union-attr]
    assert lines(out, "Status", "completed") and lines(out, "Processed", "3 of 3") and lines(out, "sent", "3")
    assert sorted(m["To"] for m in cli.h.sink.messages) == [f"buyer{i}@example.com" for i in range(3)]
    assert {m["Subject"] for m in cli.h.sink.messages} == {"Doors open at 18:30"}

    report = tmp_path / "report.csv"
    assert "(3 item(s))" in ok(await cli.run("bulk", "report", bulk_id, "--out", str(report)))
    assert {r["status"] for r in csv.DictReader(report.open())} == {"sent"}
    assert lines(ok(await cli.run("bulk", "show", bulk_id)), "Status", "completed")
    ended = await cli.run("bulk", "pause", bulk_id)
    refused(ended, "bulk-ended: ")
    nothing = await cli.run("bulk", "retry-failed", bulk_id)
    refused(nothing, "nothing-to-retry: ")


async def test_event_cancel_without_notifying(cli: Cli) -> None:
    event, _, orders = await event_with_orders(cli.h, buyers(2), method=PaymentMethod.FREE, service_fee=0)
    out = ok(await cli.run("event", "cancel", event.id, "--reason", "the show was called off", "--no-notify"))
    assert lines(out, "Status", "completed") and lines(out, "Processed", "2 of 2")
    again = await cli.run("event", "cancel", event.id, "--reason", "the show was called off")
    refused(again, "event-already-cancelled: ")
    shown = ok(await cli.run("orders", "show", orders[0].code))
    assert lines(shown, "Status", "cancelled")
