"""PaymentIntents and their charges, driven by Stripe's test payment methods.

The test payment method decides what happens later: `pm_card_pendingRefund`
makes refunds start `pending`, `pm_card_refundFail` makes them fail after
first looking successful (see `refunds.py`). The choice is kept on the
charge as private bookkeeping (`_behaviour`), never shown to clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import balance
from . import params as p
from .errors import StripeError, format_money, invalid_param, no_such
from .events import emit
from .state import RequestContext, ServerState, public
from .store import new_id


@dataclass(frozen=True)
class TestCard:
    brand: str
    last4: str
    behaviour: str  # "normal" | "pending_refund" | "refund_fail" | "decline"


TEST_CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("visa", "4242", "normal"),
    "pm_card_visa_debit": TestCard("visa", "5556", "normal"),
    "pm_card_mastercard": TestCard("mastercard", "4444", "normal"),
    "pm_card_amex": TestCard("amex", "8431", "normal"),
    "pm_card_pendingRefund": TestCard("visa", "7726", "pending_refund"),
    "pm_card_refundFail": TestCard("visa", "5126", "refund_fail"),
    "pm_card_chargeDeclined": TestCard("visa", "0002", "decline"),
}
# Stripe's minimum charge amounts (minor units) for common currencies; 50 otherwise.
MINIMUM_AMOUNTS = {
    "gbp": 30,
    "sek": 300,
    "nok": 300,
    "dkk": 250,
    "pln": 200,
    "czk": 1500,
    "huf": 17500,
    "mxn": 1000,
    "hkd": 400,
    "jpy": 50,
}
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")


def create_payment_intent(
    state: ServerState,
    params: dict[str, Any],
    ctx: RequestContext,
) -> dict[str, Any]:
    amount = p.get_int(params, "amount", required=True)
    currency = p.get_str(params, "currency", required=True)
    assert amount is not None and currency is not None
    if amount < 1:
        raise invalid_param("amount", "This value must be greater than or equal to 1.")
    minimum = MINIMUM_AMOUNTS.get(currency.lower(), 50)
    if amount < minimum:
        raise StripeError(
            400,
            f"Amount must be at least {format_money(minimum, currency)} {currency.lower()}",
            code="amount_too_small",
            param="amount",
            stored=False,
        )
    pm = p.get_str(params, "payment_method")
    card = _card(pm) if pm else None
    confirm = p.get_bool(params, "confirm")
    # API 2026-10-28 (stripe 16) sends `allowed_payment_method_types`; older
    # versions `payment_method_types`. Both restrict the types; cards are all we have.
    types = params.get("allowed_payment_method_types", params.get("payment_method_types"))
    auto = params.get("automatic_payment_methods")
    now = int(state.clock())
    intent: dict[str, Any] = {
        "id": new_id("pi"),
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "automatic_payment_methods": (
            {"enabled": p.get_bool(auto, "enabled"), "allow_redirects": auto.get("allow_redirects", "always")}
            if isinstance(auto, dict)
            else None
        ),
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": None,
        "confirmation_method": "automatic",
        "created": now,
        "currency": currency.lower(),
        "customer": p.get_str(params, "customer"),
        "description": p.get_str(params, "description"),
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": p.get_metadata(params) or {},
        "next_action": None,
        "payment_method": new_id("pm") if card else None,
        "allowed_payment_method_types": types if isinstance(types, list) else None,
        "payment_method_types": ["card"],
        "status": "requires_confirmation" if card else "requires_payment_method",
        "_card": pm if card else None,
    }
    intent["client_secret"] = f"{intent['id']}_secret_{new_id('cs')[3:]}"
    with state.store.transaction():
        state.store.put(intent)
        emit(state, "payment_intent.created", intent, ctx=ctx)
        declined = _confirm(state, intent, ctx) if confirm else None
    if declined:
        raise declined
    return intent


def confirm_payment_intent(
    state: ServerState, intent_id: str, params: dict[str, Any], ctx: RequestContext
) -> dict[str, Any]:
    with state.store.transaction():
        intent = get_payment_intent(state, intent_id)
        pm = p.get_str(params, "payment_method")
        if pm:
            _card(pm)
            intent["_card"], intent["payment_method"] = pm, new_id("pm")
        if intent["status"] not in ("requires_confirmation", "requires_payment_method"):
            raise _unexpected_state(intent, "confirm", ("requires_payment_method", "requires_confirmation"))
        if not intent.get("_card"):
            raise StripeError(
                400,
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
            )
        declined = _confirm(state, intent, ctx)
    if declined:
        raise declined
    return intent


def cancel_payment_intent(
    state: ServerState, intent_id: str, params: dict[str, Any], ctx: RequestContext
) -> dict[str, Any]:
    reason = p.get_str(params, "cancellation_reason")
    if reason and reason not in CANCELLATION_REASONS:
        raise invalid_param(
            "cancellation_reason", "Invalid cancellation_reason: must be one of " + ", ".join(CANCELLATION_REASONS)
        )
    with state.store.transaction():
        intent = get_payment_intent(state, intent_id)
        if intent["status"] not in CANCELABLE:
            raise _unexpected_state(intent, "cancel", CANCELABLE)
        previous = {"status": intent["status"], "canceled_at": None, "cancellation_reason": None}
        intent.update(status="canceled", canceled_at=int(state.clock()), cancellation_reason=reason)
        state.store.put(intent)
        emit(state, "payment_intent.canceled", intent, previous=previous, ctx=ctx)
    return intent


def get_payment_intent(state: ServerState, intent_id: str, *, param: str = "id", status: int = 404) -> dict[str, Any]:
    intent = state.store.get("payment_intent", intent_id)
    if intent is None:
        raise no_such("payment_intent", intent_id, param=param, status=status)
    return intent


def get_charge(state: ServerState, charge_id: str, *, param: str = "id", status: int = 404) -> dict[str, Any]:
    charge = state.store.get("charge", charge_id)
    if charge is None:
        raise no_such("charge", charge_id, param=param, status=status)
    return charge


def _card(pm: str) -> TestCard:
    card = TEST_CARDS.get(pm)
    if card is None:
        raise no_such("PaymentMethod", pm, param="payment_method", status=400)
    return card


def _confirm(
    state: ServerState,
    intent: dict[str, Any],
    ctx: RequestContext,
) -> StripeError | None:
    """Charge the card; a decline is returned (to raise after commit), not raised."""
    card = TEST_CARDS[intent["_card"]]
    now = int(state.clock())
    charge_id = new_id("ch")
    declined = card.behaviour == "decline"
    charge = {
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": 0 if declined else intent["amount"],
        "amount_refunded": 0,
        "balance_transaction": None if declined else new_id("txn"),
        "captured": not declined,
        "created": now,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_code": "card_declined" if declined else None,
        "failure_message": "Your card was declined." if declined else None,
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "paid": not declined,
        "payment_intent": intent["id"],
        "payment_method": intent["payment_method"],
        "payment_method_details": {
            "type": "card",
            "card": {
                "brand": card.brand,
                "last4": card.last4,
                "country": "US",
                "funding": "credit",
                "exp_month": 12,
                "exp_year": 2034,
            },
        },
        "refunded": False,
        "status": "failed" if declined else "succeeded",
        "_behaviour": card.behaviour,
    }
    state.store.put(charge)
    intent["latest_charge"] = charge_id
    if declined:
        error = StripeError(402, "Your card was declined.", type="card_error", code="card_declined")
        intent.update(
            status="requires_payment_method",
            payment_method=None,
            last_payment_error={**error.body()["error"], "decline_code": "generic_decline"},
        )
        state.store.put(intent)
        emit(state, "charge.failed", charge, ctx=ctx)
        emit(state, "payment_intent.payment_failed", intent, ctx=ctx)
        body = error.body()
        body["error"].update(decline_code="generic_decline", charge=charge_id, payment_intent=public(intent))
        return _CardDeclined(body)
    balance.record_charge(state, charge)
    intent.update(status="succeeded", amount_received=intent["amount"])
    state.store.put(intent)
    emit(state, "charge.succeeded", charge, ctx=ctx)
    emit(state, "payment_intent.succeeded", intent, ctx=ctx)
    return None


class _CardDeclined(StripeError):
    """A 402 whose body carries the charge and PaymentIntent, as Stripe's does."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(402, body["error"]["message"], type="card_error", code="card_declined")
        self._body = body

    def body(self) -> dict[str, Any]:
        return self._body


def _unexpected_state(
    intent: dict[str, Any],
    action: str,
    allowed: tuple[str, ...],
) -> StripeError:
    return StripeError(
        400,
        f"You cannot {action} this PaymentIntent because it has a status of "
        f"{intent['status']}. Only a PaymentIntent with one of the following statuses may be "
        f"{'canceled' if action == 'cancel' else 'confirmed'}: {', '.join(allowed)}.",
        code="payment_intent_unexpected_state",
    )
