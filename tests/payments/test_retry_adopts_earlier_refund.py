"""A retried submission asks the processor first: a refund whose answer was lost is adopted, not made twice.

Stripe keeps idempotency keys for 24 hours; after that the same key would make a
second refund. The key is also written into the refund's metadata, and a retry
looks it up, so the guarantee does not depend on the processor's memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.contracts import SubmitRefund
from activities.deps import Deps
from activities.payments import PaymentActivities
from devtools.stripe_server.client import stripe_client
from devtools.stripe_server.server import StripeServer
from payment_adapters.base import ProcessorRejected
from payment_adapters.stripe import StripeAdapter
from runtime.settings import Settings
from ticketing.models import Processor
from ticketing.money import Money


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    async with StripeServer() as server:
        yield server


async def _intent(stripe: StripeServer) -> str:
    params: Any = {"amount": 5000, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True,
                   "allowed_payment_method_types": ["card"]}
    intent = await stripe_client(stripe.base_url, stripe.config.api_key).v1.payment_intents.create_async(params=params)
    return str(intent.id)


def _request(intent: str, key: str) -> SubmitRefund:
    return SubmitRefund(processor="stripe", payment_reference=intent, amount=2000, currency="EUR",
                        idempotency_key=key, metadata={"refund_id": "rf_1"})


async def test_a_retry_adopts_the_refund_the_first_attempt_made(stripe: StripeServer, tmp_path: Path) -> None:
    adapter = StripeAdapter(stripe.config.api_key, stripe.config.webhook_secret, base_url=stripe.base_url)
    deps = Deps(settings=Settings(), store=cast(Any, None), email=cast(Any, None), payments={Processor.STRIPE: adapter})
    activities = PaymentActivities(deps)
    intent = await _intent(stripe)
    first = await ActivityEnvironment().run(activities.submit_refund, _request(intent, "refund/X/1/attempt-1"))
    # Without the lookup, the same key after expiry makes a second refund: the stand-in is faithful.
    blind = await adapter.create_refund(
        payment_reference=intent, amount=Money(amount=100, currency="EUR"), idempotency_key="k-probe", metadata={}
    )
    stripe.state.store.prune_results(float("inf"))
    again_blind = await adapter.create_refund(
        payment_reference=intent, amount=Money(amount=100, currency="EUR"), idempotency_key="k-probe", metadata={}
    )
    assert again_blind.id != blind.id
    # The processor forgets the key (as Stripe does after a day): a blind retry would refund again.
    stripe.state.store.prune_results(float("inf"))
    retry_env = ActivityEnvironment()
    retry_env.info = dataclasses.replace(retry_env.info, attempt=2)
    again = await retry_env.run(activities.submit_refund, _request(intent, "refund/X/1/attempt-1"))
    assert again.id == first.id
    assert [r["id"] for r in stripe.refunds() if r["amount"] == 2000] == [first.id]
    # Finance's retry (attempt 2, a new key) finds attempt 1's refund by the ledger refund's id.
    looked_up = await adapter.find_refunds(
        payment_reference=intent, refund_id="rf_1", idempotency_key="refund/X/1/attempt-2"
    )
    assert [r.id for r in looked_up] == [first.id]
    retried = await ActivityEnvironment().run(activities.submit_refund, _request(intent, "refund/X/1/attempt-2"))
    assert retried.id == first.id and len([r for r in stripe.refunds() if r["amount"] == 2000]) == 1
    assert await adapter.find_refunds(payment_reference=intent, refund_id="rf_2", idempotency_key="k-none") == []


async def test_the_lookup_pages_past_the_first_hundred_refunds(stripe: StripeServer) -> None:
    """Stripe lists 100 refunds a page at most; ours may be on any page."""
    adapter = StripeAdapter(stripe.config.api_key, stripe.config.webhook_secret, base_url=stripe.base_url)
    deps = Deps(settings=Settings(), store=cast(Any, None), email=cast(Any, None), payments={Processor.STRIPE: adapter})
    intent = await _intent(stripe)
    ours = await ActivityEnvironment().run(
        PaymentActivities(deps).submit_refund, _request(intent, "refund/X/1/attempt-1")
    )
    for n in range(150):  # newer than ours: Stripe lists newest first, so ours is on the second page
        stripe.dashboard_refund(intent, amount=1, metadata={"n": str(n)})
    found = await adapter.find_refunds(payment_reference=intent, refund_id="rf_1", idempotency_key="refund/X/1/x")
    assert [r.id for r in found] == [ours.id]
    lists = [r for r in stripe.request_log if r.method == "GET" and r.path == "/v1/refunds"]
    assert len(lists) == 1 + 2  # the look before ours was made (one page), then two pages


class _RefusingLookups:
    """An adapter whose list call is refused (4xx), as for a payment the processor does not know."""

    created = 0

    async def find_refunds(self, **_: object) -> list[object]:
        raise ProcessorRejected("No such payment_intent", code="resource_missing", status=400)

    async def create_refund(self, **_: object) -> object:
        self.created += 1
        raise AssertionError("no refund is created after a refused look")


async def test_a_refused_look_fails_the_submission_as_a_refused_create_would() -> None:
    """A 4xx on the look is the processor's no: refund-error with its code, not retried for ever."""
    adapter = _RefusingLookups()
    deps = Deps(settings=Settings(), store=cast(Any, None), email=cast(Any, None),
                payments={Processor.STRIPE: cast(Any, adapter)})
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(PaymentActivities(deps).submit_refund, _request("pi_unknown", "k-1"))
    assert refused.value.type == "processor-rejected" and refused.value.non_retryable
    assert refused.value.details[0]["code"] == "resource_missing" and adapter.created == 0
