"""Payment adapters and reconciliation sources by processor, built from settings."""

from __future__ import annotations

from payment_adapters.base import PaymentAdapter
from payment_adapters.manual import FreeAdapter, ManualAdapter
from payment_adapters.reconciliation import ReconciliationSource
from payment_adapters.stripe import StripeAdapter
from payment_adapters.stripe_client import build_stripe_client
from payment_adapters.stripe_reconciliation import StripeReconciliationSource
from runtime.settings import Settings
from ticketing.models import Processor


def payment_adapters(settings: Settings) -> dict[Processor, PaymentAdapter]:
    stripe = settings.stripe
    return {
        Processor.STRIPE: StripeAdapter(
            stripe.api_key.get_secret_value(),
            stripe.webhook_secret.get_secret_value(),
            base_url=stripe.base_url,
        ),
        Processor.MANUAL: ManualAdapter(),
        Processor.FREE: FreeAdapter(),
    }


def reconciliation_source(settings: Settings, processor: Processor) -> ReconciliationSource | None:
    """Where reconciliation reads `processor`; None when there is nothing to read (manual, free)."""
    if processor is Processor.STRIPE:
        stripe = settings.stripe
        client = build_stripe_client(stripe.api_key.get_secret_value(), base_url=stripe.base_url, max_network_retries=0)
        return StripeReconciliationSource(client)
    return None
