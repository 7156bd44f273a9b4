"""PaymentIntents: confirmation with test cards, retrieval, listing, cancellation."""

from __future__ import annotations

import pytest
import stripe

from .support import Backend, charge_id, paid_intent


async def test_confirmed_intent_succeeds_with_a_charge(backend: Backend) -> None:
    pi = await paid_intent(backend.client, amount=4200)
    assert (pi.object, pi.status, pi.amount, pi.currency) == ("payment_intent", "succeeded", 4200, "eur")
    assert charge_id(pi).startswith("ch_")
    assert pi.to_dict()["metadata"] == {"suite": "stripe_contract"}

    fetched = await backend.client.v1.payment_intents.retrieve_async(pi.id)
    assert (fetched.id, fetched.status, fetched.amount_received) == (pi.id, "succeeded", 4200)
    charge = await backend.client.v1.charges.retrieve_async(charge_id(pi))
    assert (charge.amount, charge.amount_refunded, charge.refunded, charge.payment_intent) == (4200, 0, False, pi.id)


async def test_succeeded_intent_cannot_be_canceled(backend: Backend) -> None:
    pi = await paid_intent(backend.client)
    with pytest.raises(stripe.InvalidRequestError) as err:
        await backend.client.v1.payment_intents.cancel_async(pi.id)
    assert (err.value.http_status, err.value.code) == (400, "payment_intent_unexpected_state")


async def test_unconfirmed_intent_can_be_canceled(backend: Backend) -> None:
    pi = await backend.client.v1.payment_intents.create_async(
        params={
            "amount": 1000,
            "currency": "eur",
            "payment_method": "pm_card_visa",
            "allowed_payment_method_types": ["card"],
        }
    )
    assert pi.status == "requires_confirmation"
    canceled = await backend.client.v1.payment_intents.cancel_async(pi.id, params={"cancellation_reason": "abandoned"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    with pytest.raises(stripe.InvalidRequestError) as err:
        await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    assert err.value.http_status == 400


async def test_declined_card_raises_card_error(backend: Backend) -> None:
    with pytest.raises(stripe.CardError) as err:
        await paid_intent(backend.client, "pm_card_chargeDeclined")
    assert (err.value.http_status, err.value.code) == (402, "card_declined")


async def test_list_payment_intents_newest_first(backend: Backend) -> None:
    older = await paid_intent(backend.client)
    newer = await paid_intent(backend.client)
    page = await backend.client.v1.payment_intents.list_async(params={"limit": 2})
    assert page.to_dict()["object"] == "list"
    assert [pi.id for pi in page.data] == [newer.id, older.id]


async def test_amount_below_the_minimum_is_rejected(backend: Backend) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        await paid_intent(backend.client, amount=20)
    assert (err.value.http_status, err.value.code) == (400, "amount_too_small")
