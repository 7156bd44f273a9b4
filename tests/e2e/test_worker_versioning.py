"""Worker Versioning on the dev server: a rollout from build v1 to v2 with real worker processes.

Short workflows are PINNED (they finish on the version they started on); a Refund, which can
wait for days, is AUTO_UPGRADE and moves to the new current version at its next workflow task.
Versioned workers run as processes (`python -m workers.main`), as they do in production: a
process with versioning on declares the behaviours process-wide (workers/build.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import VersioningBehavior
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError

from devtools.stripe_server.server import StripeServer, StripeServerConfig
from runtime.settings import RefundConfig
from tests.e2e.refund_support import card_order, request_refund
from tests.harness import Harness, running, worker_env
from ticketing.store.engine import Store

pytestmark = pytest.mark.slow
FAST_POLL = RefundConfig(poll_initial_seconds=0.5, poll_max_seconds=0.5)


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    server = StripeServer(StripeServerConfig(pending_refund_settle_seconds=600))  # stays confirming
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def app(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> AsyncIterator[Harness]:
    async with running(
        temporal_client, store, tmp_path, queue_prefix, stripe=stripe, with_workers=False,
        settings_overrides={"refunds": FAST_POLL},
    ) as harness:
        yield harness


@contextlib.contextmanager
def versioned_worker(app: Harness, build_id: str, log: Path) -> Iterator[None]:
    env = worker_env(
        app,
        TICKETOPS_WORKER__VERSIONING="true",
        TICKETOPS_WORKER__DEPLOYMENT_NAME=deployment(app),
        TICKETOPS_WORKER__BUILD_ID=build_id,
        TICKETOPS_REFUNDS__POLL_INITIAL_SECONDS="0.5",
        TICKETOPS_REFUNDS__POLL_MAX_SECONDS="0.5",
    )
    proc = subprocess.Popen([sys.executable, "-m", "workers.main"], env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def deployment(app: Harness) -> str:
    return f"{app.prefix}ticketops"


async def make_current(client: Client, deployment: str, build_id: str) -> None:
    """What the rollout runbook does with `temporal worker deployment set-current-version`."""
    for _ in range(1200):  # a worker process takes some seconds to start polling
        with contextlib.suppress(RPCError):
            info = await client.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
            )
            if any(v.deployment_version.build_id == build_id for v in info.worker_deployment_info.version_summaries):
                await client.workflow_service.set_worker_deployment_current_version(
                    SetWorkerDeploymentCurrentVersionRequest(
                        namespace=client.namespace, deployment_name=deployment, build_id=build_id
                    )
                )
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"version {deployment}.{build_id} never registered")


async def versioning(app: Harness, workflow_id: str) -> Any:
    described = await app.client.get_workflow_handle(workflow_id).describe()
    return described.raw_description.workflow_execution_info.versioning_info


async def test_rollout_pins_short_workflows_and_upgrades_a_waiting_refund(
    app: Harness, stripe: StripeServer, tmp_path: Path
) -> None:
    with versioned_worker(app, "v1", tmp_path / "v1.log"), versioned_worker(app, "v2", tmp_path / "v2.log"):
        await rollout(app, stripe)


async def rollout(app: Harness, stripe: StripeServer) -> None:
    """v1 is current; v2 is deployed beside it (ramped to nothing), then made current."""
    await make_current(app.client, deployment(app), "v1")
    order = await card_order(app, stripe, card="pm_card_pendingRefund")
    refund = await request_refund(app, order.code, {"kind": "amount", "amount": {"amount": 1000, "currency": "EUR"},
                                                    "reason": "goodwill"})
    resend = await app.http.post(f"/orders/{order.code}/resend", headers={"Idempotency-Key": "v1"})
    assert (await app.wait_operation(resend.json()["operation_id"]))["status"] == "completed"

    pinned = await versioning(app, resend.json()["operation_id"])
    assert pinned.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_PINNED
    assert pinned.deployment_version.build_id == "v1"
    waiting = await versioning(app, refund["operation_id"])
    assert waiting.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE
    assert waiting.deployment_version.build_id == "v1"

    # Roll out: v2 (already polling beside v1) becomes current.
    await make_current(app.client, deployment(app), "v2")
    for _ in range(100):  # the refund polls Stripe every 0.5 s: its next task runs on v2
        moved = await versioning(app, refund["operation_id"])
        if moved.deployment_version.build_id == "v2":
            break
        await asyncio.sleep(0.1)
    assert moved.deployment_version.build_id == "v2", moved
    assert moved.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE

    again = await app.http.post(f"/orders/{order.code}/resend", headers={"Idempotency-Key": "v2"})
    assert (await app.wait_operation(again.json()["operation_id"]))["status"] == "completed"
    assert (await versioning(app, again.json()["operation_id"])).deployment_version.build_id == "v2"
    assert (await versioning(app, resend.json()["operation_id"])).deployment_version.build_id == "v1"
    await app.client.get_workflow_handle(refund["operation_id"]).terminate("test over")
