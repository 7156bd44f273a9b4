"""Payment adapters by processor, built from settings."""

from __future__ import annotations

from payment_adapters.base import PaymentAdapter
from payment_adapters.manual import FreeAdapter, ManualAdapter
from payment_adapters.stripe import StripeAdapter
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
