"""Building a `stripe.StripeClient` for real Stripe or a Stripe-compatible server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe


class HTTPXClient(stripe.HTTPXClient):
    """The SDK's HTTPX client, sending the already-encoded body as `content=`.

    stripe 16 passes the form string as `data=`, which httpx 0.28 deprecates
    (a DeprecationWarning on every POST); the bytes sent are the same.
    """

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        data = kwargs.get("data")
        if isinstance(data, str | bytes):
            kwargs["content"] = kwargs.pop("data")
        elif not data:
            kwargs.pop("data", None)
        return args, kwargs


def build_stripe_client(
    api_key: str, *, base_url: str | None = None, max_network_retries: int = 0, timeout: float = 30.0
) -> stripe.StripeClient:
    """`base_url` None means api.stripe.com; retries are left to Temporal by default."""
    kwargs: dict[str, Any] = {}
    if base_url:
        kwargs["base_addresses"] = {"api": base_url.rstrip("/")}
    return stripe.StripeClient(
        api_key,
        http_client=HTTPXClient(timeout=timeout, allow_sync_methods=True),
        max_network_retries=max_network_retries,
        **kwargs,
    )
