"""Fixtures: the backend under test (local server, or real Stripe test mode).

Every contract test runs twice: `local` against the dev server, and `live`
(marker `stripe_live`) against Stripe test mode when STRIPE_API_KEY holds a
test key; without one the live variant is skipped with its reason.
STRIPE_API_BASE can aim the live variant elsewhere (e.g. a standalone dev
server, to check that the live path needs no hooks).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from stripe._http_client import HTTPClient

from devtools.stripe_server import StripeServer, StripeServerConfig, stripe_client

from .support import Backend, WebhookReceiver

LIVE_KEY = os.environ.get("STRIPE_API_KEY", "")
LIVE_SKIP_REASON = (
    "STRIPE_API_KEY is not set: the contract tests ran against the local Stripe server only "
    "(set it to a Stripe test-mode key, sk_test_..., to also run them against Stripe)"
    if not LIVE_KEY
    else "STRIPE_API_KEY is not a test-mode key (sk_test_/rk_test_): refusing to run against live Stripe"
    if not LIVE_KEY.startswith(("sk_test_", "rk_test_"))
    else ""
)

TEST_CONFIG = StripeServerConfig(
    pending_refund_settle_seconds=0.3,
    refund_fail_after_seconds=0.3,
    # Stripe's three-day retry schedule compressed into 30 s (first retry after ~7 ms).
    webhook_retry_time_scale=1 / 8640,
    tick_seconds=0.02,
)


@pytest.fixture(scope="session")
async def local_server() -> AsyncIterator[StripeServer]:
    server = StripeServer(TEST_CONFIG)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session", params=["local", pytest.param("live", marks=pytest.mark.stripe_live)])
def session_backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "live":
        if LIVE_SKIP_REASON:
            pytest.skip(LIVE_SKIP_REASON)
        base = os.environ.get("STRIPE_API_BASE", "https://api.stripe.com")
        return Backend(
            "live",
            stripe_client(base, LIVE_KEY),
            stripe_client(base, LIVE_KEY, max_network_retries=5),
            LIVE_KEY,
            base,
            settle_timeout=120.0,
            poll_interval=2.0,
        )
    server: StripeServer = request.getfixturevalue("local_server")
    key = server.config.api_key
    return Backend(
        "local",
        stripe_client(server.base_url, key),
        stripe_client(server.base_url, key, max_network_retries=3),
        key,
        server.base_url,
        local=server,
    )


def _reset(server: StripeServer) -> None:
    server.reset()
    server.set_webhook_url(None)


@pytest.fixture
def backend(session_backend: Backend) -> Iterator[Backend]:
    """The backend, with the local server's knobs back at rest around each test."""
    if session_backend.local:
        _reset(session_backend.local)
    yield session_backend
    if session_backend.local:
        _reset(session_backend.local)


@pytest.fixture
def fast_retries(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Locally, shrink the SDK's retry backoff (0.5 s minimum) so retry tests stay quick."""
    if backend.local:
        monkeypatch.setattr(HTTPClient, "INITIAL_DELAY", 0.05)
        monkeypatch.setattr(HTTPClient, "MAX_DELAY", 0.2)


@pytest.fixture(scope="session")
async def receiver() -> AsyncIterator[WebhookReceiver]:
    rec = WebhookReceiver()
    await rec.start()
    yield rec
    await rec.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if LIVE_SKIP_REASON:
        terminalreporter.write_line(f"stripe_live: skipped: {LIVE_SKIP_REASON}", yellow=True)
