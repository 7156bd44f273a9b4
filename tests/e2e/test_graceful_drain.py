"""Graceful drain: SIGTERM a worker process mid-work, as a rollout or a scale-down does.

The worker stops polling, lets its running activities finish (worker.graceful_shutdown_seconds)
and exits; another worker process carries the workflow on. Unlike the SIGKILL chaos tests,
nothing is retried: every activity ran once (attempt 1), so nothing is lost or done twice, and
the history shows who did what (worker identity is `pid@host`).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client

from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from runtime.settings import BlobConfig, BulkConfig, RefundConfig
from tests.e2e.bulk_support import buyers, event_with_orders, per_recipient, wait_bulk
from tests.e2e.refund_support import card_order, request_refund, stripe_refunds_for
from tests.harness import Harness, running, worker_env
from ticketing.states import RefundStatus
from ticketing.store.engine import Store
from ticketing.store.refunds import load_refund

pytestmark = pytest.mark.slow
GRACE = 30


def _worker(app: Harness, log: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "workers.main"],
        env=worker_env(app, TICKETOPS_WORKER__GRACEFUL_SHUTDOWN_SECONDS=str(GRACE), **env),
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=GRACE + 10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _drained(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then wait (without blocking the loop) for the process to finish its work and exit."""
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout=GRACE + 10)


async def _activity_runs(client: Client, workflow_id: str) -> list[tuple[str, int, str]]:
    """(activity type, attempt, worker identity) of every activity attempt that started."""
    scheduled: dict[int, str] = {}
    runs = []
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            runs.append((scheduled[attrs.scheduled_event_id], attrs.attempt, attrs.identity))
    return runs


async def _workflow_task_identities(client: Client, workflow_id: str) -> list[str]:
    return [
        event.workflow_task_started_event_attributes.identity
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    ]


def _by(pid: int, identity: str) -> bool:
    return identity.startswith(f"{pid}@")


async def test_sigterm_mid_bulk_delivery_finishes_the_batch_and_another_worker_goes_on(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str
) -> None:
    overrides = {
        "blobs": BlobConfig(root=str(tmp_path / "blobs")),
        "bulk": BulkConfig(batch_size=8, window=1, emails_per_second=3, continue_after_batches=100),
    }
    async with running(
        temporal_client, store, tmp_path, queue_prefix, with_workers=False, settings_overrides=overrides
    ) as app:
        emails = buyers(20)
        event, _, _ = await event_with_orders(app, emails)
        first = _worker(app, tmp_path / "worker-1.log")
        second: subprocess.Popen[bytes] | None = None
        try:
            resp = await app.http.post(f"/events/{event.id}/deliveries", json={})
            assert resp.status_code == 202, resp.text
            await app.sink.wait_for_messages(2, timeout=90)  # the first batch (8 at 3/s) is in flight
            second = _worker(app, tmp_path / "worker-2.log")
            assert await _drained(first) == 0, (tmp_path / "worker-1.log").read_text()[-3000:]
            sent_by_first = len(app.sink.deliveries)
            assert 8 <= sent_by_first < 20  # it finished its batch before leaving, and left the rest
            done = await wait_bulk(app, resp.json()["bulk_id"], timeout=120)
        finally:
            _stop(first)
            if second is not None:
                _stop(second)
        assert done["counts"] == {"sent": 20}
        received = per_recipient(app)
        assert set(received) == set(emails) and set(received.values()) == {1}, received
        runs = await _activity_runs(app.client, resp.json()["operation_id"])
        batches = [r for r in runs if r[0] == "deliver_bulk_batch"]
        assert all(attempt == 1 for _, attempt, _ in runs), runs  # nothing cancelled and retried
        assert _by(first.pid, batches[0][2]) and second is not None and _by(second.pid, batches[-1][2]), batches


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    async with StripeServer(StripeServerConfig()) as server:
        yield server


async def _submit_in_flight(app: Harness, workflow_id: str) -> None:
    handle = app.client.get_workflow_handle(workflow_id)
    for _ in range(1200):
        described = await handle.describe()
        pending: Any = described.raw_description.pending_activities
        started = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        if any(p.activity_type.name == "submit_refund" and p.state == started for p in pending):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("submit_refund never started")


async def test_sigterm_mid_refund_submission_completes_it_once_and_another_worker_goes_on(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> None:
    async with running(
        temporal_client, store, tmp_path, queue_prefix, stripe=stripe, with_workers=False,
        settings_overrides={"refunds": RefundConfig(poll_initial_seconds=0.5)},
    ) as app:
        order = await card_order(app, stripe, tickets=2)
        stripe.set_latency(3000)  # every processor call takes 3 s: the SIGTERM lands inside one
        first = _worker(app, tmp_path / "worker-1.log")
        second: subprocess.Popen[bytes] | None = None
        try:
            started = await request_refund(app, order.code, {"kind": "full", "reason": "drain"})
            await _submit_in_flight(app, started["operation_id"])
            second = _worker(app, tmp_path / "worker-2.log")
            assert await _drained(first) == 0, (tmp_path / "worker-1.log").read_text()[-3000:]
            assert len(stripe_refunds_for(stripe, order.payment.reference)) == 1  # submitted before it left
            stripe.set_latency(0)
            done = await app.wait_operation(started["operation_id"], timeout=120)
        finally:
            _stop(first)
            if second is not None:
                _stop(second)
        assert done["status"] == "completed" and done["result"]["status"] == "refunded", done
        at_stripe = stripe_refunds_for(stripe, order.payment.reference)
        assert [(r["amount"], r["status"]) for r in at_stripe] == [(7000, "succeeded")]
        posts = [r for r in stripe.request_log if r.method == "POST" and r.path == "/v1/refunds"]
        assert len(posts) == 1  # one submission: not cancelled and resubmitted
        async with app.store.transaction() as conn:
            refund = await load_refund(conn, started["refund_id"])
        assert refund.status is RefundStatus.SUCCEEDED and refund.processor_refund_id == at_stripe[0]["id"]
        runs = await _activity_runs(app.client, started["operation_id"])
        assert all(attempt == 1 for _, attempt, _ in runs), runs
        submit = [r for r in runs if r[0] == "submit_refund"]
        assert len(submit) == 1 and _by(first.pid, submit[0][2])
        tasks = await _workflow_task_identities(app.client, started["operation_id"])
        assert second is not None and _by(second.pid, tasks[-1]), tasks  # the other worker finished it
