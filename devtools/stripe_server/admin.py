"""`/_admin/...`: the test-control surface over HTTP, for another process.

A soak, a chaos test or a running `make dev` flips the same switches as the
`StripeServer` hooks (both call `divergence` and `ServerState`). Requests are
authenticated with the account's API key like the rest of the API, but are
never rate limited or faulted. Bodies and answers are JSON; a bad value is a
400 `{"error": {"type": "invalid_request_error", "message": ...}}`. The
routes are listed in the README ("Switches").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from . import divergence
from .errors import StripeError, invalid_param, no_such
from .idempotency import Outcome
from .limits import FAULT_MODES
from .state import ServerState

PREFIX = "/_admin/"

Action = Callable[[ServerState, dict[str, Any], tuple[str, ...]], dict[str, Any]]


def _state(state: ServerState, _body: dict[str, Any], _ids: tuple[str, ...]) -> dict[str, Any]:
    return {
        "faults": state.faults.describe(),
        "rate_limit_per_second": state.limiter.rate if state.limiter else None,
        "latency_ms": state.latency_ms,
        "webhook_url": state.webhook_url,
        "webhook_drops": [
            {"remaining": d.remaining, "types": list(d.types or ()), "object_id": d.object_id}
            for d in state.webhook_drops
        ],
        "clock": {"now": state.clock(), "offset_seconds": state.clock_offset, "frozen_at": state.clock_frozen_at},
    }


def _reset(state: ServerState, body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    divergence.reset(state)
    return _state(state, body, ids)


def _faults(state: ServerState, body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    mode = body.get("mode")
    if mode is not None and mode not in FAULT_MODES:
        raise invalid_param("mode", f"mode must be one of {', '.join(FAULT_MODES)}")
    try:
        state.set_faults(
            float(body.get("rate", 1.0)),
            mode,
            _opt_int(body, "seed"),
            count=_opt_int(body, "count"),
            method=body.get("method"),
            path_prefix=body.get("path"),
            delay_seconds=_opt_float(body, "delay_seconds"),
        )
    except ValueError as err:
        raise invalid_param("rate", str(err)) from None
    return _state(state, body, ids)


def _rate_limit(state: ServerState, body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    per_second = _opt_float(body, "per_second")
    if per_second is not None and per_second <= 0:
        raise invalid_param("per_second", "per_second must be > 0 (or null for no limit)")
    state.set_rate_limit(per_second)
    return _state(state, body, ids)


def _latency(state: ServerState, body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    state.latency_ms = max(0, int(body.get("ms", 0)))
    return _state(state, body, ids)


def _webhook_url(state: ServerState, body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    url = body.get("url")
    state.webhook_url = str(url) if url else None
    return _state(state, body, ids)


def _clock(state: ServerState, body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    if "advance_seconds" in body:
        state.advance_clock(float(body["advance_seconds"]))
    else:
        state.set_clock(
            offset_seconds=_opt_float(body, "offset_seconds") or 0.0, frozen_at=_opt_float(body, "frozen_at")
        )
    return _state(state, body, ids)


def _fail_refund(state: ServerState, body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    webhook = body.get("webhook", "send")
    if webhook not in ("send", "acknowledged", "dropped"):
        raise invalid_param("webhook", "webhook must be send, acknowledged or dropped")
    try:
        return divergence.fail_refund(
            state,
            ids[0],
            body.get("reason", "expired_or_canceled_card"),
            after_seconds=_opt_float(body, "after_seconds") or 0.0,
            webhook=webhook,
        )
    except ValueError as err:
        raise invalid_param("reason", str(err)) from None


def _duplicate_refund(state: ServerState, body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    return divergence.duplicate_refund(state, ids[0], amount=_opt_int(body, "amount"))


def _hold_refund(state: ServerState, body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    try:
        return divergence.hold_refund_pending(state, ids[0], body.get("pending_reason", "insufficient_funds"))
    except ValueError as err:
        raise invalid_param("pending_reason", str(err)) from None


def _release_refund(state: ServerState, body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    try:
        return divergence.release_refund(state, ids[0], after_seconds=_opt_float(body, "after_seconds") or 0.0)
    except ValueError as err:
        raise invalid_param("id", str(err)) from None


def _stray_balance(state: ServerState, body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    try:
        return divergence.stray_balance_transaction(
            state, ids[0], type=str(body.get("type") or "refund_failure"), amount=_opt_int(body, "amount")
        )
    except ValueError as err:
        raise invalid_param("type", str(err)) from None


def _dashboard_refund(state: ServerState, body: dict[str, Any], _ids: tuple[str, ...]) -> dict[str, Any]:
    intent = body.get("payment_intent")
    if not intent:
        raise invalid_param("payment_intent", "payment_intent is required")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise invalid_param("metadata", "metadata must be an object")
    return divergence.dashboard_refund(
        state, str(intent), amount=_opt_int(body, "amount"), metadata={str(k): str(v) for k, v in metadata.items()}
    )


def _drop_webhooks(state: ServerState, body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    types = body.get("types")
    if types is not None and not isinstance(types, list):
        raise invalid_param("types", "types must be a list of event types")
    try:
        divergence.drop_webhooks(
            state, _opt_int(body, "count") if "count" in body else 1, types=types, object_id=body.get("object_id")
        )
    except ValueError as err:
        raise invalid_param("count", str(err)) from None
    return _state(state, body, ids)


def _forget_keys(state: ServerState, _body: dict[str, Any], _ids: tuple[str, ...]) -> dict[str, Any]:
    return {"forgotten": divergence.forget_idempotency_keys(state)}


def _resend_event(state: ServerState, _body: dict[str, Any], ids: tuple[str, ...]) -> dict[str, Any]:
    try:
        divergence.resend_event(state, ids[0])
    except KeyError:
        raise no_such("event", ids[0]) from None
    return {"event": ids[0], "resent": True}


_ID = r"([A-Za-z0-9_]+)"
_ROUTES: list[tuple[str, re.Pattern[str], Action]] = [
    (m, re.compile(f"^{PREFIX}{path}$"), action)
    for m, path, action in (
        ("GET", "state", _state),
        ("POST", "reset", _reset),
        ("POST", "faults", _faults),
        ("POST", "rate_limit", _rate_limit),
        ("POST", "latency", _latency),
        ("POST", "webhook_url", _webhook_url),
        ("POST", "clock", _clock),
        ("POST", f"refunds/{_ID}/fail", _fail_refund),
        ("POST", f"refunds/{_ID}/duplicate", _duplicate_refund),
        ("POST", f"refunds/{_ID}/hold", _hold_refund),
        ("POST", f"refunds/{_ID}/release", _release_refund),
        ("POST", f"refunds/{_ID}/stray_balance", _stray_balance),
        ("POST", "dashboard_refunds", _dashboard_refund),
        ("POST", "webhooks/drop", _drop_webhooks),
        ("POST", "idempotency/forget", _forget_keys),
        ("POST", f"events/{_ID}/resend", _resend_event),
    )
]


async def handle(state: ServerState, request: Request) -> Outcome:
    for method, pattern, action in _ROUTES:
        match = pattern.match(request.url.path)
        if match and method == request.method:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError:
                raise StripeError(400, "The body must be JSON.", stored=False) from None
            if not isinstance(body, dict):
                raise StripeError(400, "The body must be a JSON object.", stored=False)
            return Outcome.of(200, action(state, body, match.groups()))
    raise StripeError(404, f"Unrecognized admin URL ({request.method}: {request.url.path}).")


def _opt_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_param(name, f"{name} must be an integer") from None


def _opt_float(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise invalid_param(name, f"{name} must be a number") from None
