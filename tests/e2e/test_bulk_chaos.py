"""Chaos: the worker process is SIGKILLed in the middle of a bulk delivery.

A new worker picks the batch up after its heartbeat times out; the items and
the delivery log say who already has their email, so every recipient gets
exactly one. The kill lands while the batch waits for its next send slot (the
rate limit), i.e. between two recipients: a kill inside the few milliseconds
between the SMTP server's "250 OK" and our commit could repeat that one
message, with the same Message-ID (README, "No email is sent twice").
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from temporalio.client import Client

from runtime.settings import BlobConfig, BulkConfig
from tests.e2e.bulk_support import buyers, event_with_orders, per_recipient, wait_bulk
from tests.harness import Harness, running, worker_env
from ticketing.store.engine import Store

pytestmark = pytest.mark.slow


def _worker(app: Harness, log: Path) -> subprocess.Popen[bytes]:
    env = worker_env(app)
    return subprocess.Popen(
        [sys.executable, "-m", "workers.main"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


async def _quiet_for(app: Harness, seconds: float) -> None:
    """Wait until no message has arrived for `seconds`: the batch is sleeping between sends."""
    count, since = len(app.sink.deliveries), time.monotonic()
    while time.monotonic() - since < seconds:
        await asyncio.sleep(0.01)
        if len(app.sink.deliveries) != count:
            count, since = len(app.sink.deliveries), time.monotonic()


async def test_worker_killed_mid_bulk_delivery(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str
) -> None:
    overrides = {
        "blobs": BlobConfig(root=str(tmp_path / "blobs")),
        "bulk": BulkConfig(batch_size=8, window=1, emails_per_second=3, heartbeat_seconds=3, continue_after_batches=2),
    }
    async with running(
        temporal_client, store, tmp_path, queue_prefix, with_workers=False, settings_overrides=overrides
    ) as app:
        emails = buyers(20)
        event, _, _ = await event_with_orders(app, emails)
        first = _worker(app, tmp_path / "worker-1.log")
        try:
            resp = await app.http.post(f"/events/{event.id}/deliveries", json={})
            assert resp.status_code == 202, resp.text
            await app.sink.wait_for_messages(5, timeout=60)
            await _quiet_for(app, 0.12)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        sent_before = len(app.sink.deliveries)
        assert 5 <= sent_before < 20
        second = _worker(app, tmp_path / "worker-2.log")
        try:
            done = await wait_bulk(app, resp.json()["bulk_id"], timeout=120)
        finally:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(timeout=20)
            except subprocess.TimeoutExpired:
                second.kill()
        assert done["counts"] == {"sent": 20}
        received = per_recipient(app)
        assert set(received) == set(emails) and set(received.values()) == {1}, received
