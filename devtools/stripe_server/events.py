"""Stripe Event objects: stored for `GET /v1/events`, queued for webhook delivery.

An event is written in the same transaction as the change it reports, so a
refund never changes without its event, and delivery (done later by the
background task) can never hold up an API response. Each event has one
delivery row per endpoint; `delivery_success` and `pending_webhooks` are read
from those rows. A divergence switch may drop an event's webhook (recorded as
failed, never sent) or acknowledge it unsent (recorded as delivered).
"""

from __future__ import annotations

from typing import Any

import stripe

from .state import RequestContext, ServerState, public
from .store import new_id

# Where a dropped event is recorded as undelivered when no endpoint is configured.
NO_ENDPOINT = "about:no-endpoint"
API_VERSION: str = getattr(stripe, "api_version", None) or "2026-10-28.endive"


def emit(
    state: ServerState,
    type: str,
    obj: dict[str, Any],
    *,
    previous: dict[str, Any] | None = None,
    ctx: RequestContext | None = None,
) -> dict[str, Any]:
    """Record an event of `type` about `obj` and queue it for the webhook endpoint."""
    now = state.clock()
    data: dict[str, Any] = {"object": public(obj)}
    if previous:
        data["previous_attributes"] = previous
    event: dict[str, Any] = {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(now),
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {
            "id": ctx.request_id if ctx else None,
            "idempotency_key": ctx.idempotency_key if ctx else None,
        },
        "type": type,
    }
    fate = state.webhook_fate(event)
    url = state.webhook_url
    if fate == "send" and url:
        event["pending_webhooks"] = 1
        state.store.add_delivery(str(event["id"]), url, now)
    elif fate == "dropped":
        event["pending_webhooks"] = 1
        state.store.add_delivery(str(event["id"]), url or NO_ENDPOINT, now, state="failed")
    elif fate == "acknowledged" and url:
        state.store.add_delivery(str(event["id"]), url, now, state="delivered")
    state.store.put(event)
    state.wake()
    return event


def with_delivery(state: ServerState, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events with `pending_webhooks` as it is now: endpoints not yet delivered to."""
    pending = state.store.pending_webhooks([str(e["id"]) for e in events])
    return [{**e, "pending_webhooks": pending.get(str(e["id"]), 0)} for e in events]
