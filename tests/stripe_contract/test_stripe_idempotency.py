"""Idempotency keys: replay, mismatch, concurrency, and lost answers."""

from __future__ import annotations

import asyncio

import pytest
import stripe

from devtools.stripe_server import stripe_client

from .support import Backend, charge_id, key, paid_intent


def _refunds_of(backend: Backend, pi_id: str) -> list[dict[str, object]]:
    return [r for r in backend.server.refunds() if r["payment_intent"] == pi_id]


async def test_same_key_same_params_replays_the_same_refund(backend: Backend) -> None:
    pi = await paid_intent(backend.client)
    k = key()
    first = await backend.client.v1.refunds.create_async(
        params={"payment_intent": pi.id, "amount": 300, "metadata": {"order": "A1"}}, options={"idempotency_key": k}
    )
    again = await backend.client.v1.refunds.create_async(  # same params, other order
        params={"metadata": {"order": "A1"}, "amount": 300, "payment_intent": pi.id}, options={"idempotency_key": k}
    )

    assert again.id == first.id
    assert again.last_response is not None
    assert again.last_response.headers.get("idempotent-replayed") == "true"
    charge = await backend.client.v1.charges.retrieve_async(charge_id(pi))
    assert charge.amount_refunded == 300
    if backend.local:
        assert len(_refunds_of(backend, pi.id)) == 1


async def test_same_key_other_params_is_an_idempotency_error(backend: Backend) -> None:
    pi = await paid_intent(backend.client)
    k = key()
    await backend.client.v1.refunds.create_async(
        params={"payment_intent": pi.id, "amount": 300}, options={"idempotency_key": k}
    )
    with pytest.raises(stripe.IdempotencyError) as err:
        await backend.client.v1.refunds.create_async(
            params={"payment_intent": pi.id, "amount": 400}, options={"idempotency_key": k}
        )
    assert err.value.http_status == 400
    assert err.value.error is not None and err.value.error.type == "idempotency_error"


async def test_an_error_result_is_replayed_too(backend: Backend) -> None:
    pi = await paid_intent(backend.client, amount=100)
    k = key()
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError) as err:
            await backend.client.v1.refunds.create_async(
                params={"payment_intent": pi.id, "amount": 500}, options={"idempotency_key": k}
            )
        assert err.value.code == "amount_too_large"
    if backend.local:
        assert err.value.headers is not None
        assert err.value.headers.get("idempotent-replayed") == "true"


@pytest.mark.usefixtures("fast_retries")
async def test_concurrent_requests_with_one_key_make_one_refund(backend: Backend) -> None:
    pi = await paid_intent(backend.client)
    k = key()
    if backend.local:
        backend.local.set_latency(100)  # keep the first request in flight

    async def create() -> stripe.Refund:
        return await backend.retrying_client.v1.refunds.create_async(
            params={"payment_intent": pi.id, "amount": 250}, options={"idempotency_key": k}
        )

    results = await asyncio.gather(*(create() for _ in range(3)))

    assert len({r.id for r in results}) == 1
    charge = await backend.client.v1.charges.retrieve_async(charge_id(pi))
    assert charge.amount_refunded == 250
    if backend.local:
        assert len(_refunds_of(backend, pi.id)) == 1
        statuses = [e.status for e in backend.local.request_log if e.idempotency_key == k]
        assert 409 in statuses  # the others were told the key was in use, then replayed
        assert statuses.count(200) == 3


async def test_lost_answer_is_recovered_by_retrying_with_the_key(backend: Backend) -> None:
    server = backend.server
    pi = await paid_intent(backend.client)
    k = key()
    server.inject_faults(1.0, mode="after")
    with pytest.raises(stripe.APIError):
        await backend.client.v1.refunds.create_async(
            params={"payment_intent": pi.id, "amount": 100}, options={"idempotency_key": k}
        )
    server.inject_faults(0.0)
    assert len(_refunds_of(backend, pi.id)) == 1  # it ran, the caller just never heard

    retried = await backend.client.v1.refunds.create_async(
        params={"payment_intent": pi.id, "amount": 100}, options={"idempotency_key": k}
    )
    assert retried.last_response is not None
    assert retried.last_response.headers.get("idempotent-replayed") == "true"
    assert [r["id"] for r in _refunds_of(backend, pi.id)] == [retried.id]


async def test_a_lost_answer_retried_after_the_key_expired_refunds_again(backend: Backend) -> None:
    """What `after_expired` stands for: the same key, a day later, is a new request (so we look first)."""
    server = backend.server
    pi = await paid_intent(backend.client)
    k = key()
    server.inject_faults(1.0, mode="after_expired", method="POST", path="/v1/refunds", count=1)
    with pytest.raises(stripe.APIError):
        await backend.client.v1.refunds.create_async(
            params={"payment_intent": pi.id, "amount": 100}, options={"idempotency_key": k}
        )
    [made] = _refunds_of(backend, pi.id)
    retried = await backend.client.v1.refunds.create_async(
        params={"payment_intent": pi.id, "amount": 100}, options={"idempotency_key": k}
    )
    assert retried.last_response is not None
    assert retried.last_response.headers.get("idempotent-replayed") is None
    assert [r["id"] for r in _refunds_of(backend, pi.id)] == [made["id"], retried.id]


async def test_server_errors_are_not_saved_so_a_retry_runs(backend: Backend) -> None:
    server = backend.server
    pi = await paid_intent(backend.client)
    k = key()
    server.inject_faults(1.0, mode="before")
    with pytest.raises(stripe.APIError):
        await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id}, options={"idempotency_key": k})
    server.inject_faults(0.0)
    assert _refunds_of(backend, pi.id) == []

    refund = await backend.client.v1.refunds.create_async(
        params={"payment_intent": pi.id}, options={"idempotency_key": k}
    )
    assert refund.last_response is not None
    assert refund.last_response.headers.get("idempotent-replayed") is None
    assert len(_refunds_of(backend, pi.id)) == 1


@pytest.mark.usefixtures("fast_retries")
async def test_sdk_retries_through_injected_faults_without_paying_twice(
    backend: Backend,
) -> None:
    server = backend.server
    pi = await paid_intent(backend.client, amount=1000)
    client = stripe_client(backend.base_url, backend.api_key, max_network_retries=10)
    keys = [key() for _ in range(6)]
    server.inject_faults(0.5, mode="after", seed=3)
    for k in keys:
        await client.v1.refunds.create_async(
            params={"payment_intent": pi.id, "amount": 100}, options={"idempotency_key": k}
        )
    server.inject_faults(0.0)

    assert sum(int(str(r["amount"])) for r in _refunds_of(backend, pi.id)) == 600
    statuses = [e.status for e in server.request_log if e.idempotency_key in keys]
    assert 500 in statuses and statuses.count(200) == 6
