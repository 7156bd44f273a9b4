"""Authentication, rate limits, injected faults, latency, and restarts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import stripe

from devtools.stripe_server import StripeServer, StripeServerConfig, stripe_client

from .support import Backend, key, paid_intent


async def test_wrong_api_key_is_an_authentication_error(backend: Backend) -> None:
    client = stripe_client(backend.base_url, "sk_test_not_a_real_key_0000")
    with pytest.raises(stripe.AuthenticationError) as err:
        await client.v1.refunds.list_async()
    assert err.value.http_status == 401


async def test_missing_api_key_gets_stripes_error_shape(backend: Backend) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{backend.base_url}/v1/refunds")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "API key" in error["message"]


async def test_unknown_url_is_404(backend: Backend) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        await backend.client.raw_request_async("get", "/v1/not_a_resource")
    assert err.value.http_status == 404


async def test_balance(backend: Backend) -> None:
    balance = await backend.client.v1.balance.retrieve_async()
    assert balance.object == "balance"


async def test_above_the_rate_limit_requests_get_429(backend: Backend) -> None:
    server = backend.server
    server.set_rate_limit(1)  # a burst of one, then one a second
    results = await asyncio.gather(
        *(backend.client.v1.balance.retrieve_async() for _ in range(10)), return_exceptions=True
    )
    limited = [r for r in results if isinstance(r, stripe.RateLimitError)]
    assert 1 <= len(limited) <= 9
    assert all(not isinstance(r, Exception) or isinstance(r, stripe.RateLimitError) for r in results)
    assert limited[0].http_status == 429
    assert limited[0].error is not None and limited[0].error.code == "rate_limit"

    server.set_rate_limit(None)
    await backend.client.v1.balance.retrieve_async()


async def test_injected_fault_is_an_api_error(backend: Backend) -> None:
    server = backend.server
    server.inject_faults(1.0)
    with pytest.raises(stripe.APIError) as err:
        await backend.client.v1.balance.retrieve_async()
    assert err.value.http_status == 500
    assert err.value.error is not None and err.value.error.type == "api_error"


async def test_faults_are_deterministic_for_a_seed() -> None:
    async def pattern() -> list[bool]:
        async with StripeServer(StripeServerConfig(fault_rate=0.5, seed=7)) as server:
            client = stripe_client(server.base_url, server.config.api_key)
            outcomes = []
            for _ in range(16):
                try:
                    await client.v1.balance.retrieve_async()
                    outcomes.append(True)
                except stripe.APIError:
                    outcomes.append(False)
            return outcomes

    first, second = await pattern(), await pattern()
    assert first == second
    assert True in first and False in first


async def test_latency_is_added(backend: Backend) -> None:
    backend.server.set_latency(150)
    started = time.monotonic()
    await backend.client.v1.balance.retrieve_async()
    assert time.monotonic() - started >= 0.15


async def test_state_and_idempotency_survive_a_restart(tmp_path: Path) -> None:
    config = StripeServerConfig(db_path=str(tmp_path / "stripe.sqlite"))
    k = key()
    async with StripeServer(config) as server:
        client = stripe_client(server.base_url, config.api_key)
        pi = await paid_intent(client)
        refund = await client.v1.refunds.create_async(
            params={"payment_intent": pi.id, "amount": 100}, options={"idempotency_key": k}
        )

    async with StripeServer(config) as server:
        client = stripe_client(server.base_url, config.api_key)
        fetched = await client.v1.refunds.retrieve_async(refund.id)
        assert (fetched.id, fetched.amount) == (refund.id, 100)
        replay = await client.v1.refunds.create_async(
            params={"payment_intent": pi.id, "amount": 100}, options={"idempotency_key": k}
        )
        assert replay.id == refund.id
        assert [r["id"] for r in server.refunds()] == [refund.id]
