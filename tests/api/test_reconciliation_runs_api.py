"""`POST /reconciliation/runs` and `/reconciliation/backfill` against the real dev server's schedules."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from backoffice.principals import Role
from backoffice.schedules import apply_schedules, schedule_id
from runtime.settings import ReconciliationSettings
from tests.harness import Harness, running
from tests.reconcile_support import WindowReporter
from ticketing.reconciliation_records import ReconWindow
from ticketing.store.engine import Store

PROBLEM = "https://ticketops.dev/problems/"
DAY = timedelta(days=1)


@pytest_asyncio.fixture
async def recon(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    """The API with a paused nightly schedule for Stripe and a worker running the window reporter."""
    overrides = {"reconciliation": ReconciliationSettings(paused=True, hour=4, minute=30, time_zone="UTC")}
    async with running(
        temporal_client, store, tmp_path, queue_prefix, with_workers=False, settings_overrides=overrides
    ) as harness, Worker(temporal_client, task_queue=f"{queue_prefix}orders", workflows=[WindowReporter]):
        await apply_schedules(temporal_client, harness.settings)
        handle = temporal_client.get_schedule_handle(schedule_id(harness.settings, "stripe"))
        harness.extra["schedule"] = handle
        yield harness
        await handle.delete()


async def _finance(h: Harness) -> dict[str, str]:
    return await h.headers_for("fin", Role.FINANCE)


async def test_run_now_triggers_the_schedule(recon: Harness) -> None:
    resp = await recon.http.post("/reconciliation/runs", json={"processor": "stripe"}, headers=await _finance(recon))
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["how"] == "trigger"
    assert body["schedule_id"] == f"{recon.prefix}reconcile-stripe"
    assert body["operation_id"] == body["operation_ids"][0]
    assert body["operation_id"].startswith("reconcile/stripe/scheduled-")
    result = await recon.client.get_workflow_handle(body["operation_id"]).result()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert result["label"] == ReconWindow(start=today - 2 * DAY, end=today - DAY).label


async def test_run_with_a_window_starts_that_window_once_per_key(recon: Harness) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    window = {"start": (today - 30 * DAY).isoformat(), "end": (today - 29 * DAY).isoformat()}
    headers = {**await _finance(recon), "Idempotency-Key": "recon-1"}
    first = await recon.http.post("/reconciliation/runs", json={"window": window}, headers=headers)
    again = await recon.http.post("/reconciliation/runs", json={"window": window}, headers=headers)
    assert first.status_code == again.status_code == 202, first.text
    label = ReconWindow(start=today - 30 * DAY, end=today - 29 * DAY).label
    assert first.json()["operation_ids"] == [f"reconcile/stripe/{label}"]
    assert again.headers["Idempotent-Replayed"] == "true"
    result = await recon.client.get_workflow_handle(f"reconcile/stripe/{label}").result()
    assert result["label"] == label


async def test_backfill_three_windows_through_the_schedule(recon: Harness) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    body = {"processor": "stripe", "start": (today - 9 * DAY).isoformat(), "end": (today - 6 * DAY).isoformat()}
    resp = await recon.http.post("/reconciliation/backfill", json=body, headers=await _finance(recon))
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert accepted["how"] == "backfill" and len(accepted["windows"]) == 3
    handle = recon.extra["schedule"]
    deadline = time.monotonic() + 20
    while (info := (await handle.describe()).info).num_actions < 3 or info.running_actions:
        assert time.monotonic() < deadline, info
        await asyncio.sleep(0.1)
    labels = sorted(
        [(await recon.client.get_workflow_handle(a.action.workflow_id).result())["label"] for a in info.recent_actions]
    )
    assert labels == [ReconWindow.model_validate(w).label for w in accepted["windows"]]


async def test_refusals_are_problems(recon: Harness) -> None:
    fin = await _finance(recon)
    now = datetime.now(UTC)
    cases = [
        ("/reconciliation/runs", {"processor": "manual"}, 409, "processor-not-reconciled"),
        ("/reconciliation/runs", {"processor": "paypal"}, 409, "unknown-processor"),
        (
            "/reconciliation/runs",
            {"window": {"start": (now - DAY).isoformat(), "end": (now + DAY).isoformat()}},
            409,
            "window-not-ended",
        ),
        ("/reconciliation/runs", {"window": {"start": "2026-12-02T00:00:00", "end": "2026-12-03T00:00:00"}}, 422,
         "validation-error"),
        ("/reconciliation/backfill", {"start": (now - timedelta(hours=2)).isoformat(), "end": now.isoformat()}, 409,
         "empty-range"),
        ("/reconciliation/backfill", {"start": "2024-01-01T00:00:00Z", "end": "2027-12-01T00:00:00Z"}, 409,
         "range-too-long"),
        ("/reconciliation/backfill", {"start": "2026-12-03T00:00:00Z", "end": "2026-12-01T00:00:00Z"}, 422,
         "validation-error"),
    ]
    for url, body, status, slug in cases:
        resp = await recon.http.post(url, json=body, headers=fin)
        assert (resp.status_code, resp.json()["type"]) == (status, PROBLEM + slug), (body, resp.text)
    support = await recon.headers_for("sup", Role.SUPPORT)
    resp = await recon.http.post("/reconciliation/runs", json={}, headers=support)
    assert (resp.status_code, resp.json()["type"]) == (403, PROBLEM + "forbidden")
    assert (await recon.extra["schedule"].describe()).info.num_actions == 0  # nothing refused started anything


async def test_run_now_without_a_schedule_is_refused(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str
) -> None:
    async with running(temporal_client, store, tmp_path, queue_prefix, with_workers=False) as h:
        resp = await h.http.post("/reconciliation/runs", json={}, headers=await _finance(h))
    assert (resp.status_code, resp.json()["type"]) == (409, PROBLEM + "schedule-missing")
