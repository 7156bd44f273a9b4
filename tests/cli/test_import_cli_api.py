"""`ticketops orders import` through `POST /imports`, against the real API, workers and Temporal."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.builders import make_event
from tests.cli.conftest import Cli, ok
from tests.e2e.import_support import csv_text as _csv
from tests.e2e.import_support import import_row as _row
from tests.harness import seed
from ticketing.store.orders import load_history


async def test_import_through_the_api_and_follow_it(cli: Cli, tmp_path: Path) -> None:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    await seed(cli.h.store, event, types, slots, [])
    rows = [_row(event.id, n) for n in range(3)]
    path = tmp_path / "spring.csv"
    path.write_text(_csv(rows))
    printed = ok(await cli.run("orders", "import", str(path), "--deliver", "--wait", name="ops-1"))
    assert "importing 3 order(s), 6 ticket(s) from spring.csv" in printed
    assert "completed" in printed
    async with cli.h.store.transaction() as conn:
        history = await load_history(conn, rows[2]["order_code"])
    assert [(h.type, h.actor) for h in history] == [("order-imported", "ops-1"), ("tickets-sent", "import")]


async def test_a_bad_file_lists_every_error_and_exits_2(cli: Cli, tmp_path: Path) -> None:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    await seed(cli.h.store, event, types, slots, [])
    path = tmp_path / "bad.csv"
    path.write_text(_csv([_row(event.id, 1, contact_email="nope"), _row("evt_nope", 2)]))
    result = await cli.run("orders", "import", str(path))
    assert result.exit_code == 2, result.output
    assert "Nothing imported: 2 problem(s) in bad.csv" in result.stderr
    assert "row 1, field contact_email: not an email address" in result.stderr
    assert "row 2, field event_id: no event evt_nope" in result.stderr
