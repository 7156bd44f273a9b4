from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client

from devtools.stripe_server import StripeServer, StripeServerConfig
from runtime.settings import RefundConfig
from tests.harness import Harness, running
from ticketing.store.engine import Store

# Refund polling and reminders fast enough for a test to see them; confirmation still goes webhook-first.
FAST_REFUNDS = RefundConfig(poll_initial_seconds=0.5, poll_max_seconds=1.0, manual_reminder_days=1.0)


@pytest_asyncio.fixture
async def app(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    async with running(temporal_client, store, tmp_path, queue_prefix) as harness:
        yield harness


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    """The Stripe stand-in, settling pending refunds and failing `pm_card_refundFail` refunds after 0.5 s."""
    server = StripeServer(StripeServerConfig(pending_refund_settle_seconds=0.5, refund_fail_after_seconds=0.5))
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def stripe_app(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> AsyncIterator[Harness]:
    """The whole app on the Stripe stand-in, its webhooks delivered to the API."""
    async with running(
        temporal_client, store, tmp_path, queue_prefix, stripe=stripe, webhooks=True,
        settings_overrides={"refunds": FAST_REFUNDS},
    ) as harness:
        yield harness
