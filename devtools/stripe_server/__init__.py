"""A Stripe-compatible HTTP server for offline development and tests.

The real `stripe` SDK talks to it over HTTP. It follows Stripe's documented
behaviour for what ticketops uses: PaymentIntents, refunds with the
asynchronous life cycle of Stripe's test cards, idempotency keys, list
pagination, signed webhooks, rate limits and injected faults.
"""

from .admin_client import StripeAdmin
from .client import stripe_client
from .config import StripeServerConfig
from .server import StripeServer

__all__ = ["StripeAdmin", "StripeServer", "StripeServerConfig", "stripe_client"]
