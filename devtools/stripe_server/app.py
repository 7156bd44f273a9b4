"""The ASGI app: Stripe's request pipeline around the route handlers.

Order, as a request meets it: log -> auth (401) -> rate limit (429) ->
injected fault before execution (500 or 429) -> idempotency (replay / 400 /
409) -> latency (and an injected slow answer) -> handler -> injected fault
after execution (500, result kept; or its key forgotten too: `after_expired`).
`/_admin/...` (see `admin.py`) is the test-control surface: authenticated,
but never rate limited or faulted.
A background task settles due refunds and delivers webhooks, so webhooks
never slow an API response down.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import admin, errors, params, refunds, routes
from .config import StripeServerConfig
from .events import API_VERSION
from .idempotency import KEY_TTL_SECONDS, Outcome, run_idempotent
from .state import LoggedRequest, RequestContext, ServerState, key_scope, public
from .store import Store, new_id
from .webhooks import WebhookDispatcher

log = logging.getLogger(__name__)
_PRUNE_EVERY_SECONDS = 600.0


def create_app(config: StripeServerConfig) -> Starlette:
    """Build the app; its `ServerState` is at `app.state.stripe` for hooks."""
    state = ServerState(config=config, store=Store(config.db_path))

    async def endpoint(request: Request) -> Response:
        return await _handle(state, request)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(_background(state))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = Starlette(
        routes=[Route("/{path:path}", endpoint, methods=["GET", "POST", "DELETE", "PUT", "PATCH"])],
        lifespan=lifespan,
    )
    app.state.stripe = state
    return app


async def _handle(state: ServerState, request: Request) -> Response:
    method, path = request.method, request.url.path
    key = request.headers.get("idempotency-key") if method in ("POST", "DELETE") else None
    request_id = new_id("req")
    try:
        outcome = await _process(state, request, request_id, key)
    except errors.StripeError as exc:
        outcome = Outcome.of(exc.status, exc.body(), headers=exc.headers)
    except Exception:
        log.exception("stripe server: unhandled error on %s %s", method, path)
        outcome = Outcome.of(500, errors.api_error().body())
    state.log(LoggedRequest(method, path, key, outcome.status))
    headers = {
        "Request-Id": request_id,
        "Stripe-Version": request.headers.get("stripe-version", API_VERSION),
        **outcome.headers,
    }
    if key:
        headers["Idempotency-Key"] = key
    return Response(outcome.body, status_code=outcome.status, headers=headers, media_type="application/json")


async def _process(
    state: ServerState,
    request: Request,
    request_id: str,
    key: str | None,
) -> Outcome:
    api_key = _authenticate(state, request)
    method, path = request.method, request.url.path
    if path.startswith(admin.PREFIX):
        return await admin.handle(state, request)
    if not state.allow_request():
        raise errors.rate_limited()
    fault = state.faults.roll(method, path)
    if fault == "before":
        raise errors.api_error()
    if fault == "rate_limited":
        raise errors.rate_limited()
    resolved = routes.resolve(method, path)
    if resolved is None:
        raise errors.unrecognized_url(method, path)
    handler, ids = resolved
    raw = (await request.body()).decode() if method == "POST" else request.url.query
    ctx = RequestContext(request_id=request_id, idempotency_key=key)

    async def execute() -> Outcome:
        if state.latency_ms:
            await asyncio.sleep(state.latency_ms / 1000)
        if fault == "slow":
            await asyncio.sleep(state.faults.delay_seconds)
        try:
            return Outcome.of(200, public(handler(state, ctx, params.decode(raw), ids)))
        except errors.StripeError as exc:
            return Outcome.of(exc.status, exc.body(), stored=exc.stored, headers=exc.headers)

    if key:
        outcome = await run_idempotent(
            state,
            scope=key_scope(api_key),
            key=key,
            endpoint=f"{method} {path}",
            params=params.canonical(raw),
            request_id=request_id,
            execute=execute,
        )
    else:
        outcome = await execute()
    if fault == "after_expired" and key:  # and by the time the caller retries, the key is gone
        state.store.forget_result(key_scope(api_key), key)
    if fault in ("after", "after_expired"):  # it ran (and was saved), but the answer is lost
        raise errors.api_error()
    return outcome


def _authenticate(state: ServerState, request: Request) -> str:
    """Bearer auth, or Basic with the key as user name (as `curl -u sk_...:` sends)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    key = ""
    if scheme.lower() == "bearer":
        key = value.strip()
    elif scheme.lower() == "basic":
        with contextlib.suppress(ValueError):
            key = base64.b64decode(value).decode().partition(":")[0]
    if not key:
        raise errors.missing_api_key()
    if key != state.config.api_key:
        raise errors.invalid_api_key(key)
    return key


async def _background(state: ServerState) -> None:
    """Settle due refunds, deliver webhooks, forget old idempotency keys."""
    wake = asyncio.Event()
    state.bind_loop(asyncio.get_running_loop(), wake)
    dispatcher = WebhookDispatcher(state)
    last_prune = 0.0
    try:
        while True:
            try:
                refunds.settle_due(state)
                dispatcher.dispatch_due()
                now = state.clock()
                if now - last_prune > _PRUNE_EVERY_SECONDS:
                    state.store.prune_results(now - KEY_TTL_SECONDS)
                    last_prune = now
            except Exception:
                log.exception("stripe server: background tick failed")
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), state.config.tick_seconds)
    finally:
        await dispatcher.close()


def describe(state: ServerState) -> dict[str, Any]:
    """A summary for logs: no secrets."""
    return {
        "webhook_url": state.webhook_url,
        "faults": state.faults.describe(),
        "rate_limit": state.limiter.rate if state.limiter else None,
        "latency_ms": state.latency_ms,
        "db_path": state.config.db_path,
    }
