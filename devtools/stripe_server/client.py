"""A `stripe.StripeClient` aimed at a Stripe-compatible server (or real Stripe).

StripeClient v16 takes `base_addresses={"api": url}`; the HTTPX client is the
one whose `*_async` methods are truly async (the default falls back to a
thread), and `allow_sync_methods=True` keeps the sync methods usable too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe


class _HTTPXClient(stripe.HTTPXClient):
    """The SDK's HTTPX client, sending the already-encoded body as `content=`.

    stripe 16 passes the form string as `data=`, which httpx 0.28 deprecates
    (a DeprecationWarning on every POST); the bytes sent are the same.
    """

    def _get_request_args_kwargs(self, method: str, url: str, headers: Mapping[str, str], post_data: Any) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.get("data")
        if isinstance(data, (str, bytes)):
            kwargs["content"] = kwargs.pop("data")
        elif not data:
            kwargs.pop("data", None)
        return args, kwargs


def stripe_client(
    base_url: str, api_key: str, *, max_network_retries: int = 0, timeout: float = 30.0
) -> stripe.StripeClient:
    """Build a client for `base_url` (e.g. "http://127.0.0.1:12111").

    `max_network_retries` > 0 lets the SDK retry 409/5xx/connection errors with
    the same idempotency key, as it would against Stripe.
    """
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": base_url.rstrip("/")},
        # Plain http (the local server) needs no CA bundle; loading it costs ~35 ms.
        http_client=_HTTPXClient(
            timeout=timeout, allow_sync_methods=True, verify_ssl_certs=base_url.startswith("https://")
        ),
        max_network_retries=max_network_retries,
    )
