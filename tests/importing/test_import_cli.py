"""`ticketops orders import`: a summary on success; every error and exit code 2 otherwise."""

from __future__ import annotations

from pathlib import Path

from tests.importing.conftest import base_row, run_cli, seed_catalogue, snapshot, write_csv
from ticketing.store.engine import Store
from ticketing.store.orders import load_history


async def test_a_bad_file_exits_2_lists_every_error_and_imports_nothing(
    cli_store: Store, tmp_path: Path
) -> None:
    await seed_catalogue(cli_store)
    before = await snapshot(cli_store)
    rows = [base_row(), base_row(contact_email="ada at example.com"), base_row(event_id="evt_nope")]
    result = await run_cli("orders", "import", "--direct", str(write_csv(tmp_path / "bad.csv", rows)))

    assert result.exit_code == 2, result.output
    assert "Nothing imported: 2 problem(s) in bad.csv" in result.stderr
    assert result.stderr.splitlines()[1:] == [
        "row 2, field contact_email: not an email address",
        "row 3, field event_id: no event evt_nope",
    ]
    assert await snapshot(cli_store) == before


async def test_a_good_file_is_imported_with_the_actor_given(cli_store: Store, tmp_path: Path) -> None:
    await seed_catalogue(cli_store)
    path = write_csv(tmp_path / "good.csv", [base_row(order_code="CLI-1"), base_row(order_code="CLI-2")])
    result = await run_cli("orders", "import", "--direct", str(path), "--actor", "finance:joan")

    assert result.exit_code == 0, result.output
    assert "CLI-1, CLI-2" in result.stdout
    async with cli_store.transaction() as conn:
        history = await load_history(conn, "CLI-2")
    assert [(h.type, h.actor) for h in history] == [("order-imported", "finance:joan")]


async def test_a_missing_file_is_a_usage_error(cli_store: Store, tmp_path: Path) -> None:
    result = await run_cli("orders", "import", str(tmp_path / "absent.csv"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
