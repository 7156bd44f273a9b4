"""`ticketops reconcile ...` against the real API (served on a loopback port) and the dev server's schedules."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from activities.reconciliation_report import ReconciliationReportActivities, ReconReportRequest
from backoffice.principals import Role
from backoffice.schedules import apply_schedules, schedule_id
from runtime.settings import BlobConfig, ReconciliationSettings
from tests.cli.conftest import Cli, lines, ok, refused
from tests.e2e.test_reconciliation_report import RUN_ID, WINDOW, _seed_run
from tests.harness import running, serve_http
from tests.reconcile_support import WindowReporter
from ticketing.reconciliation_records import ReconWindow
from ticketing.store.engine import Store

DAY = timedelta(days=1)


@pytest_asyncio.fixture
async def rcli(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Cli]:
    overrides = {
        "reconciliation": ReconciliationSettings(paused=True, hour=4, minute=30, time_zone="UTC"),
        "blobs": BlobConfig(root=str(tmp_path / "blobs")),
    }
    async with running(
        temporal_client, store, tmp_path, queue_prefix, with_workers=False, settings_overrides=overrides
    ) as h, serve_http(h.extra["app"]) as url, Worker(
        temporal_client, task_queue=f"{queue_prefix}orders", workflows=[WindowReporter]
    ):
        await apply_schedules(temporal_client, h.settings)
        handle = temporal_client.get_schedule_handle(schedule_id(h.settings, "stripe"))
        h.extra["schedule"] = handle
        yield Cli(h, url)
        await handle.delete()


async def test_run_now_and_an_explicit_window(rcli: Cli) -> None:
    out = ok(await rcli.run("reconcile", "run", role=Role.FINANCE))
    assert "triggered the schedule for stripe" in out
    (started,) = lines(out, "run reconcile/stripe/scheduled-")
    result = await rcli.h.client.get_workflow_handle(started.split()[-1]).result()
    assert result["scheduled"]  # a scheduled run: its window came from TemporalScheduledStartTime
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today - 40 * DAY, today - 39 * DAY  # days no other test's run holds (ids are global)
    out = ok(await rcli.run(
        "reconcile", "run", "--from", start.date().isoformat(), "--to", end.date().isoformat(), "--wait",
        role=Role.FINANCE,
    ))
    label = ReconWindow(start=start, end=end).label
    assert lines(out, f"run reconcile/stripe/{label}")
    assert label in out  # the result (the window the run reconciled) is printed by --wait


async def test_backfill_three_windows(rcli: Cli) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    out = ok(await rcli.run(
        "reconcile", "backfill", "--from", (today - 12 * DAY).date().isoformat(),
        "--to", (today - 9 * DAY).date().isoformat(), role=Role.FINANCE,
    ))
    assert "backfill through the schedule for stripe" in out
    assert len(lines(out, "window ")) == 3
    handle = rcli.h.extra["schedule"]
    deadline = time.monotonic() + 20
    while (info := (await handle.describe()).info).num_actions < 3 or info.running_actions:
        assert time.monotonic() < deadline, info
        await asyncio.sleep(0.1)


async def test_refusals_and_usage(rcli: Cli) -> None:
    refused(await rcli.run("reconcile", "run", "--processor", "manual", role=Role.FINANCE), "processor-not-reconciled")
    refused(await rcli.run("reconcile", "run", "--from", "2026-12-01", role=Role.FINANCE), "usage")
    refused(await rcli.run("reconcile", "run", "--from", "2026-12-01T00:00", "--to", "2026-12-02T00:00",
                           role=Role.FINANCE), "usage")
    refused(await rcli.run("reconcile", "backfill", "--from", "yesterday", "--to", "2026-12-02", role=Role.FINANCE),
            "usage")
    refused(await rcli.run("reconcile", "run", role=Role.SUPPORT), "forbidden")
    refused(await rcli.run("reconcile", "items", "list", role=Role.SUPPORT), "forbidden")


async def test_runs_show_report_and_working_the_queue(rcli: Cli) -> None:
    await _seed_run(rcli.h.store)
    await ReconciliationReportActivities(rcli.h.deps).write_reconciliation_report(ReconReportRequest(run_id=RUN_ID))
    out = ok(await rcli.run("reconcile", "runs", role=Role.FINANCE))
    assert lines(out, RUN_ID, "completed", "EUR -39.00")
    out = ok(await rcli.run("reconcile", "show", RUN_ID, role=Role.FINANCE))
    assert lines(out, "Totals EUR", "processor EUR 109.00", "ledger EUR 148.00", "difference EUR -39.00")
    assert lines(out, "Found", "status-mismatch: 1")
    assert lines(out, "Report csv", f"/reconciliation/runs/{RUN_ID}/report.csv")
    csv_text = ok(await rcli.run("reconcile", "report", RUN_ID, role=Role.FINANCE))
    assert csv_text.splitlines()[0].startswith("item_id,class,severity,state,healed,order_code")
    assert len(csv_text.splitlines()) == 4
    assert '"open_items": 2' in ok(await rcli.run("reconcile", "report", RUN_ID, "--json", role=Role.FINANCE))

    out = ok(await rcli.run("reconcile", "items", "list", role=Role.FINANCE))
    assert "2 item(s)" in out
    (row,) = lines(out, "status-mismatch")
    assert "3QNY9PJS" in row and "EUR 39.00" in row and "start-late-failure" in row
    item_id = next(w for w in row.replace("│", " ").split() if w.startswith("ri_"))
    out = ok(await rcli.run("reconcile", "items", "acknowledge", item_id, "-r", "on it", role=Role.FINANCE,
                            name="fin-cli"))
    assert lines(out, "State", "acknowledged by fin-cli: on it")
    out = ok(await rcli.run("reconcile", "items", "resolve", item_id, "-r", "late failure refunded",
                            role=Role.FINANCE))
    assert lines(out, "State", "resolved")
    refused(await rcli.run("reconcile", "items", "acknowledge", item_id, "-r", "again", role=Role.FINANCE),
            "invalid-reconciliation-item-transition")
    refused(await rcli.run("reconcile", "items", "resolve", item_id, "-r", "x", role=Role.FINANCE), "validation-error")
    out = ok(await rcli.run("reconcile", "items", "list", "--class", "status-mismatch", "--state", "resolved",
                            role=Role.FINANCE))
    assert "1 item(s)" in out
    out = ok(await rcli.run("reconcile", "items", "show", item_id, role=Role.FINANCE))
    assert lines(out, "Processor", "status failed") and lines(out, "Seen", RUN_ID)
    refused(await rcli.run("reconcile", "show", "reconcile/stripe/nope", role=Role.FINANCE), "recon-run-not-found")
    assert WINDOW.label in RUN_ID
