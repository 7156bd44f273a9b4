"""What the contract tests share: the backend under test and small helpers.

A `Backend` is either the local server (with its hooks) or real Stripe test
mode; tests written against it run unchanged on both, and ask for `server`
only when they need hooks real Stripe does not have.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devtools.stripe_server import StripeServer
from devtools.stripe_server.runner import BackgroundUvicorn

T = TypeVar("T")


@dataclass
class Backend:
    name: str
    client: stripe.StripeClient
    retrying_client: stripe.StripeClient
    api_key: str
    base_url: str
    local: StripeServer | None = None
    # How long asynchronous transitions may take here (refund settling, failing).
    settle_timeout: float = 5.0
    poll_interval: float = 0.05

    @property
    def server(self) -> StripeServer:
        """The local server's hooks; a test that needs them is skipped on real Stripe."""
        if self.local is None:
            pytest.skip("needs the local server's test hooks, which real Stripe does not have")
        return self.local

    @property
    def is_live(self) -> bool:
        return self.local is None


def key() -> str:
    return f"test-{uuid.uuid4()}"


async def paid_intent(
    client: stripe.StripeClient, pm: str = "pm_card_visa", amount: int = 1000, currency: str = "eur"
) -> stripe.PaymentIntent:
    """A confirmed card PaymentIntent (succeeded for every card but declines)."""
    return await client.v1.payment_intents.create_async(
        params={
            "amount": amount,
            "currency": currency,
            "payment_method": pm,
            "confirm": True,
            "allowed_payment_method_types": ["card"],
            "metadata": {"suite": "stripe_contract"},
        }
    )


def charge_id(pi: stripe.PaymentIntent) -> str:
    """The id of the PaymentIntent's charge (never expanded in these tests)."""
    assert isinstance(pi.latest_charge, str), pi.latest_charge
    return pi.latest_charge


async def wait_for(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], *, timeout: float, interval: float = 0.05
) -> T:
    """Poll `probe` until `done(result)`; fail with the last result after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not reached within {timeout}s; last value: {result!r}")
        await asyncio.sleep(interval)


async def wait_for_refund(backend: Backend, refund_id: str, status: str) -> stripe.Refund:
    return await wait_for(
        lambda: backend.client.v1.refunds.retrieve_async(refund_id),
        lambda r: r.status == status,
        timeout=backend.settle_timeout,
        interval=backend.poll_interval,
    )


@dataclass
class Delivery:
    body: str
    signature: str | None

    @property
    def event(self) -> dict[str, Any]:
        import json

        return dict(json.loads(self.body))


@dataclass
class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1 that records deliveries and can fail on demand."""

    received: list[Delivery] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # event ids of attempts answered 503
    failures_left: int = 0

    def __post_init__(self) -> None:
        self._runner = BackgroundUvicorn(
            Starlette(routes=[Route("/webhooks/stripe", self._endpoint, methods=["POST"])])
        )

    @property
    def url(self) -> str:
        return f"{self._runner.base_url}/webhooks/stripe"

    async def start(self) -> None:
        await self._runner.start()

    async def stop(self) -> None:
        await self._runner.stop()

    def fail_next(self, count: int) -> None:
        self.failures_left = count

    def for_object(self, object_id: str) -> list[Delivery]:
        return [d for d in self.received if d.event["data"]["object"]["id"] == object_id]

    async def _endpoint(self, request: Request) -> Response:
        body = (await request.body()).decode()
        if self.failures_left > 0:
            self.failures_left -= 1
            self.refused.append(Delivery(body, None).event["id"])
            return Response("unavailable", status_code=503)
        self.received.append(Delivery(body, request.headers.get("stripe-signature")))
        return Response("ok")
