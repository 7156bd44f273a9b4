"""Real payment intents on the Stripe stand-in for the demo's card orders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from itertools import count

from devtools.stripe_server.payments import TEST_CARDS
from payment_adapters.stripe_client import build_stripe_client
from runtime.settings import Settings
from ticketing.money import Money

# Mostly cards that refund at once, some that stay pending, a few that fail: the Web UI
# then shows every refund path. Their last four digits (what the buyer's emails show) are
# the stand-in's: pm_card_visa 4242 (refunds at once), pm_card_pendingRefund 7726 (pending,
# then refunded), pm_card_refundFail 5126 (refunded, then failed later: expired_or_canceled_card).
_CARDS = ["pm_card_visa"] * 6 + ["pm_card_pendingRefund"] * 3 + ["pm_card_refundFail"]


def stripe_payment_creator(settings: Settings) -> Callable[[Money, str], Awaitable[tuple[str, str | None]]]:
    client = build_stripe_client(settings.stripe.api_key.get_secret_value(), base_url=settings.stripe.base_url)
    numbers = count()

    async def create(amount: Money, description: str) -> tuple[str, str | None]:
        card = _CARDS[next(numbers) % len(_CARDS)]
        intent = await client.v1.payment_intents.create_async(
            params={
                "amount": amount.amount,
                "currency": amount.currency.lower(),
                "payment_method": card,
                "confirm": True,
                "allowed_payment_method_types": ["card"],
                "description": description,
            },
            options={"idempotency_key": f"demo-payment-{description}"},
        )
        return str(intent.id), TEST_CARDS[card].last4

    return create
