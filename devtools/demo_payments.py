"""Real payment intents on the Stripe stand-in for the demo's card orders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from itertools import count

from payment_adapters.stripe_client import build_stripe_client
from runtime.settings import Settings
from ticketing.money import Money

# Mostly cards that refund at once, some that stay pending, a few that fail: the Web UI
# then shows every refund path.
_CARDS = ["pm_card_visa"] * 6 + ["pm_card_pendingRefund"] * 3 + ["pm_card_refundFail"]


def stripe_payment_creator(settings: Settings) -> Callable[[Money, str], Awaitable[str]]:
    client = build_stripe_client(settings.stripe.api_key.get_secret_value(), base_url=settings.stripe.base_url)
    numbers = count()

    async def create(amount: Money, description: str) -> str:
        n = next(numbers)
        intent = await client.v1.payment_intents.create_async(
            params={
                "amount": amount.amount,
                "currency": amount.currency.lower(),
                "payment_method": _CARDS[n % len(_CARDS)],
                "confirm": True,
                "allowed_payment_method_types": ["card"],
                "description": description,
            },
            options={"idempotency_key": f"demo-payment-{description}"},
        )
        return str(intent.id)

    return create
