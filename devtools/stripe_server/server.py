"""`StripeServer`: the app on 127.0.0.1 (free port), plus hooks for tests.

    server = StripeServer(StripeServerConfig(webhook_url=...))
    await server.start()
    client = stripe_client(server.base_url, server.config.api_key)
    ...
    server.inject_faults(0.2)
    assert len(server.refunds()) == 1
    await server.stop()

Hooks are synchronous and thread-safe; they act on the running state.
"""

from __future__ import annotations

import logging
from typing import Any

from .app import create_app, describe
from .config import StripeServerConfig
from .refunds import schedule_failure, settle_due
from .runner import BackgroundUvicorn
from .state import FaultMode, LoggedRequest, ServerState, public

log = logging.getLogger(__name__)


class StripeServer:
    def __init__(self, config: StripeServerConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or StripeServerConfig()
        self.app = create_app(self.config)
        self.state: ServerState = self.app.state.stripe
        self._runner = BackgroundUvicorn(self.app, host=host, port=port)

    @property
    def base_url(self) -> str:
        return self._runner.base_url

    async def start(self) -> None:
        await self._runner.start()
        log.info("stripe server listening on %s %s", self.base_url, describe(self.state))

    async def stop(self) -> None:
        """Stop serving; the hooks still read the state afterwards."""
        await self._runner.stop()

    async def __aenter__(self) -> StripeServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    # hooks ---------------------------------------------------------------------

    def inject_faults(self, rate: float, *, mode: FaultMode | None = None, seed: int | None = None) -> None:
        """Answer this fraction of requests with a 500 api_error.

        mode "before": the request does nothing. mode "after": it runs and its
        idempotent result is kept, but the caller sees a 500 (a lost answer).
        A `seed` restarts the deterministic sequence of which requests fail.
        """
        self.state.set_faults(rate, mode, seed)

    def set_rate_limit(self, per_second: float | None) -> None:
        self.state.set_rate_limit(per_second)

    def set_latency(self, latency_ms: int) -> None:
        self.state.latency_ms = max(0, latency_ms)

    def set_webhook_url(self, url: str | None) -> None:
        """Where events created from now on are delivered (None: not delivered)."""
        self.state.webhook_url = url

    def force_refund_failure(
        self, refund_id: str, reason: str = "expired_or_canceled_card", *, after_seconds: float = 0.0
    ) -> None:
        """Make a pending or succeeded refund fail `after_seconds` from now.

        The money goes back to the charge and `refund.failed`, `refund.updated`
        and `charge.refund.updated` are emitted, as for a late bank failure.
        """
        schedule_failure(self.state, refund_id, reason, after_seconds)

    def refunds(self) -> list[dict[str, Any]]:
        """Every refund, oldest first, after applying due transitions."""
        settle_due(self.state)
        return [public(r) for r in self.state.store.query("refund", newest_first=False)]

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        """Every event (optionally of one type), oldest first."""
        settle_due(self.state)
        return self.state.store.query("event", types=[type] if type else None, newest_first=False)

    def webhook_deliveries(self) -> dict[str, str]:
        """Event id -> delivery state (`pending`, `delivered`, `failed`)."""
        return self.state.store.delivery_states()

    @property
    def request_log(self) -> list[LoggedRequest]:
        """(method, path, idempotency_key, status) of every request, in order."""
        return list(self.state.request_log)
