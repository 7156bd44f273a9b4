"""Signed webhook delivery, with retries, off the request path.

The signature is Stripe's scheme: header `Stripe-Signature: t=<unix>,v1=<hex>`
where v1 is HMAC-SHA256 of f"{t}.{payload}" under the endpoint secret; the SDK's
`stripe.Webhook.construct_event` verifies it. A delivery that fails (non-2xx
or no answer) is retried on Stripe's live-mode schedule: exponential back-off
for up to three days after the event (`retry_delay`), then it is `failed` and
the event stays listed under `delivery_success=false`. One delivery row per
event and endpoint, never two attempts at once, and none once delivered: an
endpoint sees an event again only when an attempt of it failed (or on resend).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable

import httpx

from .config import StripeServerConfig
from .state import ServerState
from .store import Delivery

log = logging.getLogger(__name__)
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def retry_delay(config: StripeServerConfig, attempt: int, age: float) -> float | None:
    """Seconds until the next try after failed attempt number `attempt`, or None: give up.

    `age` is the time since the event was created. Delays double from
    `webhook_retry_base_seconds` up to `webhook_retry_max_interval_seconds`;
    no attempt is made later than `webhook_retry_horizon_seconds` after the
    event. `webhook_retry_time_scale` shrinks all three alike.
    """
    if config.webhook_max_attempts is not None and attempt >= config.webhook_max_attempts:
        return None
    scale = config.webhook_retry_time_scale
    doubled = config.webhook_retry_base_seconds * 2 ** min(attempt - 1, 60)
    delay = min(doubled, config.webhook_retry_max_interval_seconds)
    if age + delay * scale > config.webhook_retry_horizon_seconds * scale:
        return None
    return delay * scale


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The `Stripe-Signature` header value for `payload`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class WebhookDispatcher:
    """Sends due deliveries concurrently; never two attempts of one delivery at once."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._client = httpx.AsyncClient(timeout=state.config.webhook_timeout_seconds)
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def close(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        await self._client.aclose()

    def dispatch_due(self) -> None:
        for delivery in self._state.store.due_deliveries(self._state.clock()):
            ident = (delivery.event_id, delivery.url)
            if ident not in self._running:
                task = asyncio.create_task(self._deliver(delivery))
                self._running[ident] = task
                task.add_done_callback(self._forget(ident))

    def _forget(self, ident: tuple[str, str]) -> Callable[[asyncio.Task[None]], None]:
        def done(_task: asyncio.Task[None]) -> None:
            self._running.pop(ident, None)

        return done

    async def _deliver(self, delivery: Delivery) -> None:
        state = self._state
        event = state.store.get("event", delivery.event_id)
        if event is None:
            state.store.finish_delivery(delivery, ok=False, next_at=None)
            return
        payload = json.dumps(event, indent=2)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Stripe-Signature": sign(payload, state.config.webhook_secret),
        }
        ok = False
        try:
            response = await self._client.post(delivery.url, content=payload, headers=headers)
            ok = 200 <= response.status_code < 300
            detail = str(response.status_code)
        except httpx.HTTPError as exc:
            detail = type(exc).__name__
        attempt = delivery.attempts + 1
        next_at = None
        if not ok:
            now = state.clock()
            delay = retry_delay(state.config, attempt, now - float(event["created"]))
            next_at = None if delay is None else now + delay
        state.store.finish_delivery(delivery, ok=ok, next_at=next_at)
        log.log(
            logging.DEBUG if ok else logging.WARNING,
            "webhook %s %s attempt %d -> %s",
            event["type"],
            event["id"],
            attempt,
            detail,
        )
