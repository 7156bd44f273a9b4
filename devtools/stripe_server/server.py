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

from . import divergence
from .app import create_app, describe
from .config import StripeServerConfig
from .refunds import settle_due
from .runner import BackgroundUvicorn
from .state import FaultMode, LoggedRequest, ServerState, WebhookFate, public

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

    def inject_faults(
        self,
        rate: float,
        *,
        mode: FaultMode | None = None,
        seed: int | None = None,
        count: int | None = None,
        method: str | None = None,
        path: str | None = None,
        delay_seconds: float | None = None,
    ) -> None:
        """Make this fraction of requests fail.

        mode "before": a 500, the request does nothing. "after": it runs and
        its idempotent result is kept, but the caller sees a 500 (a lost
        answer). "rate_limited": a 429, nothing done. "slow": it waits
        `delay_seconds` (default `fault_delay_seconds`) and then runs, past the
        caller's timeout. `method` and `path` (a prefix such as "/v1/refunds")
        limit which requests roll; `count` stops after that many faults.
        A `seed` restarts the deterministic sequence of which requests fail.
        Every call replaces the previous setting (`inject_faults(0)` turns it off).
        """
        self.state.set_faults(
            rate, mode, seed, count=count, method=method, path_prefix=path, delay_seconds=delay_seconds
        )

    def set_rate_limit(self, per_second: float | None) -> None:
        self.state.set_rate_limit(per_second)

    def set_latency(self, latency_ms: int) -> None:
        self.state.latency_ms = max(0, latency_ms)

    def set_webhook_url(self, url: str | None) -> None:
        """Where events created from now on are delivered (None: not delivered)."""
        self.state.webhook_url = url

    def force_refund_failure(
        self,
        refund_id: str,
        reason: str = "expired_or_canceled_card",
        *,
        after_seconds: float = 0.0,
        webhook: WebhookFate = "send",
    ) -> None:
        """Make a pending or succeeded refund fail `after_seconds` from now.

        The money goes back to the charge, a `refund_failure` balance
        transaction is recorded and `refund.failed`, `refund.updated` and
        `charge.refund.updated` are emitted, as for a late bank failure.
        `webhook`: see `fail_refund_silently` and `divergence.fail_refund`.
        """
        divergence.fail_refund(self.state, refund_id, reason, after_seconds=after_seconds, webhook=webhook)

    # divergence: the processor disagrees with the ledger ------------------------

    def dashboard_refund(
        self, payment_intent: str, *, amount: int | None = None, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """A refund made in the Dashboard (no key; metadata none or foreign) on a payment."""
        return divergence.dashboard_refund(self.state, payment_intent, amount=amount, metadata=metadata)

    def fail_refund_silently(
        self, refund_id: str, reason: str = "expired_or_canceled_card", *, after_seconds: float = 0.0
    ) -> None:
        """A late failure no webhook tells of: events recorded as delivered, none sent."""
        divergence.fail_refund(self.state, refund_id, reason, after_seconds=after_seconds, webhook="acknowledged")

    def drop_webhooks(
        self, count: int | None = 1, *, types: list[str] | None = None, object_id: str | None = None
    ) -> None:
        """The next `count` matching events are never sent and stay listed as undelivered."""
        divergence.drop_webhooks(self.state, count, types=types, object_id=object_id)

    def duplicate_refund(self, refund_id: str, *, amount: int | None = None) -> dict[str, Any]:
        """A second refund with the same metadata key, as a retry makes after Stripe forgot the key."""
        return divergence.duplicate_refund(self.state, refund_id, amount=amount)

    def hold_refund_pending(self, refund_id: str, pending_reason: str = "insufficient_funds") -> dict[str, Any]:
        """Keep a pending refund pending, with this `pending_reason`, until `release_refund`."""
        return divergence.hold_refund_pending(self.state, refund_id, pending_reason)

    def release_refund(self, refund_id: str, *, after_seconds: float = 0.0) -> dict[str, Any]:
        """Let a pending refund succeed `after_seconds` from now."""
        return divergence.release_refund(self.state, refund_id, after_seconds=after_seconds)

    def stray_balance_transaction(
        self, refund_id: str, *, type: str = "refund_failure", amount: int | None = None
    ) -> dict[str, Any]:
        """A balance transaction on a refund the refund does not show (see `divergence`)."""
        return divergence.stray_balance_transaction(self.state, refund_id, type=type, amount=amount)

    def forget_idempotency_keys(self) -> int:
        """Forget saved idempotent answers now (Stripe: after 24 h)."""
        return divergence.forget_idempotency_keys(self.state)

    def resend_event(self, event_id: str) -> None:
        """One more delivery attempt of an event (the Dashboard's "Resend")."""
        divergence.resend_event(self.state, event_id)

    def set_clock(self, *, offset_seconds: float = 0.0, frozen_at: float | None = None) -> None:
        """The account's clock (objects' `created`, due transitions, retries): shifted or frozen."""
        self.state.set_clock(offset_seconds=offset_seconds, frozen_at=frozen_at)

    def advance_clock(self, seconds: float) -> None:
        self.state.advance_clock(seconds)

    def reset(self) -> None:
        """Every switch back to the configuration (the webhook URL is left as it is)."""
        divergence.reset(self.state)

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

    def delivery_attempts(self, event_id: str) -> list[tuple[str, int, str]]:
        """(endpoint url, attempts made, state) for one event."""
        return self.state.store.delivery_attempts(event_id)

    def balance_transactions(self) -> list[dict[str, Any]]:
        """Every balance transaction, oldest first."""
        settle_due(self.state)
        return self.state.store.query("balance_transaction", newest_first=False)

    @property
    def request_log(self) -> list[LoggedRequest]:
        """(method, path, idempotency_key, status) of every request, in order."""
        return list(self.state.request_log)
