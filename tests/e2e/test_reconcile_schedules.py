"""Reconciliation schedules on the real dev server (the time-skipping server has no schedules).

Schedules are created paused and driven with `trigger()` and `backfill()`, and
the tests poll `describe()`: nothing waits for the wall clock. The worker runs a
stand-in `Reconcile` workflow that only reports the window it derives from
`TemporalScheduledStartTime`: what these tests pin is the schedule's side of the
contract (which runs start, with which scheduled time), not the reconciliation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleHandle, ScheduleOverlapPolicy
from temporalio.common import SearchAttributeKey
from temporalio.worker import Worker

from backoffice.schedules import (
    apply_schedules,
    backfill,
    run_now,
    run_window,
    schedule_id,
    view_schedules,
)
from runtime.settings import ReconciliationSettings, Settings, TemporalSettings
from tests.codec_keys import TEST_CODEC
from tests.reconcile_support import WindowReporter
from ticketing.errors import ActionNotAllowed
from ticketing.reconciliation_records import ReconWindow
from ticketing.reconciliation_windows import window_for_run

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
DAY = timedelta(days=1)


def _settings(client: Client, prefix: str, **recon: Any) -> Settings:
    return Settings(
        temporal=TemporalSettings(address=client.service_client.config.target_host, queue_prefix=prefix),
        codec=TEST_CODEC,
        reconciliation=ReconciliationSettings(**recon),
    )


@pytest_asyncio.fixture
async def reporter(temporal_client: Client, queue_prefix: str) -> AsyncIterator[Worker]:
    async with Worker(temporal_client, task_queue=f"{queue_prefix}orders", workflows=[WindowReporter]) as worker:
        yield worker


@pytest_asyncio.fixture
async def cleanup(temporal_client: Client) -> AsyncIterator[list[ScheduleHandle]]:
    handles: list[ScheduleHandle] = []
    yield handles
    for handle in handles:
        await handle.delete()


async def _wait_actions(handle: ScheduleHandle, count: int, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        info = (await handle.describe()).info
        if info.num_actions >= count and not info.running_actions:
            return [getattr(a.action, "workflow_id", "") for a in info.recent_actions]
        if time.monotonic() > deadline:
            raise AssertionError(f"{info.num_actions} of {count} actions, running: {info.running_actions}")
        await asyncio.sleep(0.1)


async def test_apply_creates_the_schedule_with_its_spec_and_policies(
    temporal_client: Client, queue_prefix: str, cleanup: list[ScheduleHandle]
) -> None:
    settings = _settings(
        temporal_client, queue_prefix, hour=5, minute=15, time_zone="Europe/Amsterdam", jitter_minutes=7,
        catchup_window_hours=30, processors=["stripe", "manual", "free"],
    )
    applied = await apply_schedules(temporal_client, settings)
    handle = temporal_client.get_schedule_handle(schedule_id(settings, "stripe"))
    cleanup.append(handle)
    # Manual and free processors have nothing to reconcile: one schedule, for Stripe.
    expected = [(f"{queue_prefix}reconcile-stripe", "created", False)]
    assert [(a.schedule_id, a.outcome, a.paused) for a in applied] == expected
    desc = await handle.describe()
    spec, policy = desc.schedule.spec, desc.schedule.policy
    assert [(c.hour[0].start, c.minute[0].start) for c in spec.calendars] == [(5, 15)]
    assert spec.time_zone_name == "Europe/Amsterdam"
    assert spec.jitter == timedelta(minutes=7)
    assert policy.overlap is ScheduleOverlapPolicy.SKIP
    assert policy.catchup_window == timedelta(hours=30)
    assert policy.pause_on_failure is True
    action = desc.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "Reconcile"
    assert action.id == "reconcile/stripe/scheduled"
    assert action.task_queue == f"{queue_prefix}orders"
    # The next runs are at 05:15 in Amsterdam (plus jitter), i.e. 04:15 UTC in winter.
    assert desc.info.next_action_times
    views = await view_schedules(temporal_client, settings)
    assert [(v.exists, v.spec, v.overlap) for v in views] == [(True, "daily at 5:15", "SKIP")]


async def test_apply_twice_updates_the_one_schedule_and_keeps_a_pause(
    temporal_client: Client, queue_prefix: str, cleanup: list[ScheduleHandle]
) -> None:
    first = await apply_schedules(temporal_client, _settings(temporal_client, queue_prefix, hour=4))
    handle = temporal_client.get_schedule_handle(first[0].schedule_id)
    cleanup.append(handle)
    created_at = (await handle.describe()).info.created_at
    await handle.pause(note="paused by a failed run")
    second = await apply_schedules(temporal_client, _settings(temporal_client, queue_prefix, cron="0 6 * * *"))
    assert [(a.schedule_id, a.outcome) for a in second] == [(first[0].schedule_id, "updated")]
    desc = await handle.describe()
    assert desc.info.created_at == created_at  # the same schedule, not a new one
    assert desc.info.last_updated_at is not None
    # The cron replaced the calendar (the server compiles cron to calendars) ...
    hours = [r.start for c in desc.schedule.spec.calendars for r in c.hour] + [
        int(e.split()[1]) for e in desc.schedule.spec.cron_expressions
    ]
    assert hours == [6]
    # ... and the pause, with its note, survived: a person decides to unpause.
    assert desc.schedule.state.paused is True
    assert desc.schedule.state.note == "paused by a failed run"
    assert second[0].paused is True


async def test_run_now_triggers_the_window_of_now(
    temporal_client: Client, queue_prefix: str, reporter: Worker, cleanup: list[ScheduleHandle]
) -> None:
    settings = _settings(temporal_client, queue_prefix, paused=True)
    await apply_schedules(temporal_client, settings)
    handle = temporal_client.get_schedule_handle(schedule_id(settings, "stripe"))
    cleanup.append(handle)
    before = datetime.now(UTC)
    started = await run_now(temporal_client, settings, "stripe")
    assert started.how == "trigger" and len(started.operation_ids) == 1
    assert started.operation_ids[0].startswith("reconcile/stripe/scheduled-")
    result = await temporal_client.get_workflow_handle(started.operation_ids[0]).result()
    scheduled = datetime.fromisoformat(result["scheduled"])
    assert before - timedelta(seconds=5) <= scheduled <= datetime.now(UTC)
    assert result["label"] == window_for_run(scheduled, length=DAY, lag=DAY).label
    assert (await handle.describe()).schedule.state.paused  # a trigger does not unpause


async def test_run_now_while_a_run_is_going_is_refused(
    temporal_client: Client, queue_prefix: str, cleanup: list[ScheduleHandle]
) -> None:
    """No worker here: the first triggered run stays running, so overlap policy SKIP skips the second."""
    settings = _settings(temporal_client, queue_prefix, paused=True)
    await apply_schedules(temporal_client, settings)
    handle = temporal_client.get_schedule_handle(schedule_id(settings, "stripe"))
    cleanup.append(handle)
    first = await run_now(temporal_client, settings, "stripe")
    try:
        with pytest.raises(ActionNotAllowed) as refused:
            await run_now(temporal_client, settings, "stripe")
        assert refused.value.type == "run-in-progress"
        assert first.operation_ids[0] in refused.value.detail
        info = (await handle.describe()).info
        assert (info.num_actions, info.num_actions_skipped_overlap) == (1, 1)
    finally:
        await temporal_client.get_workflow_handle(first.operation_ids[0]).terminate("test over")


async def test_backfill_runs_one_reconciliation_per_window(
    temporal_client: Client, queue_prefix: str, reporter: Worker, cleanup: list[ScheduleHandle]
) -> None:
    settings = _settings(temporal_client, queue_prefix, paused=True, hour=4, minute=30, time_zone="UTC")
    await apply_schedules(temporal_client, settings)
    handle = temporal_client.get_schedule_handle(schedule_id(settings, "stripe"))
    cleanup.append(handle)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today - 10 * DAY, today - 7 * DAY
    started = await backfill(temporal_client, settings, "stripe", start, end)
    assert started.how == "backfill"
    assert [w.label for w in started.windows] == [
        ReconWindow(start=start + i * DAY, end=start + (i + 1) * DAY).label for i in range(3)
    ]
    ids = await _wait_actions(handle, 3)
    assert len(ids) == 3
    results = [await temporal_client.get_workflow_handle(i).result() for i in ids]
    # Each run's scheduled time is the nightly 04:30 of its day, and each reconciles its own window.
    assert sorted(r["label"] for r in results) == [w.label for w in started.windows]
    assert all(datetime.fromisoformat(r["scheduled"]).strftime("%H:%M") == "04:30" for r in results)
    assert (await handle.describe()).info.num_actions == 3  # nothing extra


async def test_explicit_window_starts_once_under_its_window_id(
    temporal_client: Client, queue_prefix: str, reporter: Worker
) -> None:
    settings = _settings(temporal_client, queue_prefix)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    window = ReconWindow(start=today - 60 * DAY, end=today - 59 * DAY)  # days no other test's run holds
    started = await run_window(temporal_client, settings, "stripe", window)
    assert started.operation_ids == [f"reconcile/stripe/{window.label}"]
    result = await temporal_client.get_workflow_handle(started.operation_ids[0]).result()
    assert result == {"label": window.label, "scheduled": None}
    # No schedule for this prefix: a backfill starts each window directly, by its window id.
    # (Workflow ids are the namespace's, not the test's: each test reconciles days of its own.)
    direct = await backfill(temporal_client, settings, "stripe", today - 70 * DAY, today - 68 * DAY)
    assert direct.how == "start"
    assert direct.operation_ids == [f"reconcile/stripe/{w.label}" for w in direct.windows]
    assert len(direct.windows) == 2
    results = [await temporal_client.get_workflow_handle(i).result() for i in direct.operation_ids]
    assert [r["label"] for r in results] == [w.label for w in direct.windows]


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        ("run_now_manual", "processor-not-reconciled"),
        ("run_now_unknown", "unknown-processor"),
        ("run_now_without_schedule", "schedule-missing"),
        ("window_not_ended", "window-not-ended"),
        ("backfill_empty", "empty-range"),
    ],
)
async def test_refusals(temporal_client: Client, queue_prefix: str, call: str, problem: str) -> None:
    settings = _settings(temporal_client, queue_prefix)
    now = datetime.now(UTC)
    calls = {
        "run_now_manual": lambda: run_now(temporal_client, settings, "manual"),
        "run_now_unknown": lambda: run_now(temporal_client, settings, "paypal"),
        "run_now_without_schedule": lambda: run_now(temporal_client, settings, "stripe"),
        "window_not_ended": lambda: run_window(
            temporal_client, settings, "stripe", ReconWindow(start=now - DAY, end=now + DAY)
        ),
        "backfill_empty": lambda: backfill(temporal_client, settings, "stripe", now - timedelta(hours=3), now),
    }
    with pytest.raises(ActionNotAllowed) as refused:
        await calls[call]()
    assert refused.value.type == problem
