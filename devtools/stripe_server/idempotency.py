"""Idempotency keys with Stripe's semantics.

- The first request with a key runs; its status and body are saved once the
  endpoint began executing (parameter validation errors and 5xx are not saved,
  so a retry runs again).
- The same key with the same endpoint and parameters replays the saved answer,
  with `Idempotent-Replayed: true`.
- The same key with other parameters, or on another endpoint, is an
  `idempotency_error` (HTTP 400).
- While a request with the key is still running, another one gets HTTP 409
  `idempotency_key_in_use` (with `Stripe-Should-Retry: true`), so two
  concurrent requests never both execute.
- Keys are scoped per API key and forgotten after 24 hours.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import idempotency_endpoint_mismatch, idempotency_in_use, idempotency_mismatch
from .state import ServerState
from .store import StoredResult

KEY_TTL_SECONDS = 24 * 3600


@dataclass
class Outcome:
    """A response about to be sent: JSON text plus whether it may be saved."""

    status: int
    body: str
    stored: bool = True
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, status: int, body: dict[str, Any], *, stored: bool = True, headers: dict[str, str] | None = None
    ) -> Outcome:
        return cls(status, json.dumps(body, indent=2), stored, dict(headers or {}))


async def run_idempotent(
    state: ServerState,
    *,
    scope: str,
    key: str,
    endpoint: str,
    params: str,
    request_id: str,
    execute: Callable[[], Awaitable[Outcome]],
) -> Outcome:
    replay = _replay(state, scope, key, endpoint, params)
    if replay is not None:
        return replay
    if not state.claim(scope, key):
        raise idempotency_in_use(key)
    try:
        # A request with this key may have finished between the lookup and the claim.
        replay = _replay(state, scope, key, endpoint, params)
        if replay is not None:
            return replay
        outcome = await execute()
        if outcome.stored and outcome.status < 500:
            state.store.save_result(
                scope, key, StoredResult(endpoint, params, outcome.status, outcome.body, request_id), state.clock()
            )
        return outcome
    finally:
        state.release(scope, key)


def _replay(
    state: ServerState,
    scope: str,
    key: str,
    endpoint: str,
    params: str,
) -> Outcome | None:
    saved = state.store.get_result(scope, key, newer_than=state.clock() - KEY_TTL_SECONDS)
    if saved is None:
        return None
    if saved.endpoint != endpoint:
        raise idempotency_endpoint_mismatch(key, saved.endpoint, endpoint)
    if saved.params != params:
        raise idempotency_mismatch(key)
    return Outcome(
        saved.status,
        saved.body,
        stored=False,
        headers={"Idempotent-Replayed": "true", "Original-Request": saved.request_id},
    )
