"""Rate limiting per credential: a runaway script gets 429 with Retry-After; others carry on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client

from backoffice.api.rate_limit import RateLimiter
from runtime.settings import AuthSettings
from tests.harness import Harness, running
from ticketing.store.engine import Store


def test_token_bucket_refills_at_the_configured_rate() -> None:
    limiter = RateLimiter(per_minute=3)
    assert [limiter.take("a", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", now=100.0) == 20.0  # one token every 20 s
    assert limiter.take("b", now=100.0) == 0.0  # buckets are per credential
    assert limiter.take("a", now=110.0) == 10.0
    assert limiter.take("a", now=120.0) == 0.0
    assert limiter.take("a", now=10_000.0) == 0.0  # a long pause refills to capacity, not beyond
    assert [limiter.take("a", now=10_000.0) for _ in range(3)][-1] > 0


@pytest_asyncio.fixture
async def limited(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    overrides = {"auth": AuthSettings(rate_limit_per_minute=5)}
    async with running(
        temporal_client, store, tmp_path, queue_prefix, with_workers=False, settings_overrides=overrides
    ) as harness:
        yield harness


async def test_the_sixth_request_in_a_minute_is_refused(limited: Harness) -> None:
    script = await limited.headers_for("script", "support")
    statuses = [(await limited.http.get("/orders", headers=script)).status_code for _ in range(5)]
    assert statuses == [200] * 5
    refused = await limited.http.get("/orders", headers=script)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/rate-limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 12
    other = await limited.http.get("/orders", headers=await limited.headers_for("agent-2", "support"))
    assert other.status_code == 200
    # Public routes are not counted against anyone.
    assert (await limited.http.get("/health")).status_code == 200
