"""Stripe Event objects: stored for `GET /v1/events`, queued for webhook delivery.

An event is written in the same transaction as the change it reports, so a
refund never changes without its event, and delivery (done later by the
background task) can never hold up an API response.
"""

from __future__ import annotations

from typing import Any

import stripe

from .state import RequestContext, ServerState, public
from .store import new_id

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
    url = state.webhook_url
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
        "pending_webhooks": 1 if url else 0,
        "request": {
            "id": ctx.request_id if ctx else None,
            "idempotency_key": ctx.idempotency_key if ctx else None,
        },
        "type": type,
    }
    state.store.put(event)
    if url:
        state.store.add_delivery(str(event["id"]), url, now)
    state.wake()
    return event
