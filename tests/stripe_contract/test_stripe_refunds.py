"""Refunds: amounts, errors, and the asynchronous life cycle of Stripe's test cards."""

from __future__ import annotations

import pytest
import stripe

from .support import Backend, charge_id, paid_intent, wait_for_refund


async def test_full_refund_succeeds_at_once_and_marks_the_charge(backend: Backend) -> None:
    pi = await paid_intent(backend.client, amount=1250)
    refund = await backend.client.v1.refunds.create_async(
        params={"payment_intent": pi.id, "reason": "requested_by_customer", "metadata": {"order": "A1"}}
    )

    assert refund.object == "refund"
    assert refund.id.startswith("re_")
    assert (refund.status, refund.amount, refund.currency) == ("succeeded", 1250, "eur")
    assert (refund.payment_intent, refund.charge) == (pi.id, charge_id(pi))
    assert refund.reason == "requested_by_customer"
    assert refund.to_dict()["metadata"] == {"order": "A1"}
    charge = await backend.client.v1.charges.retrieve_async(charge_id(pi))
    assert (charge.amount_refunded, charge.refunded) == (1250, True)
    if backend.local:
        assert [r["id"] for r in backend.local.refunds() if r["payment_intent"] == pi.id] == [refund.id]


async def test_partial_refunds_add_up_then_the_charge_is_already_refunded(
    backend: Backend,
) -> None:
    pi = await paid_intent(backend.client, amount=1000)
    first = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 300})
    rest = await backend.client.v1.refunds.create_async(params={"charge": charge_id(pi)})
    assert (first.amount, rest.amount) == (300, 700)

    with pytest.raises(stripe.InvalidRequestError) as err:
        await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 1})
    assert (err.value.http_status, err.value.code) == (400, "charge_already_refunded")


async def test_over_refund_is_amount_too_large(backend: Backend) -> None:
    pi = await paid_intent(backend.client, amount=1000)
    await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 400})

    with pytest.raises(stripe.InvalidRequestError) as err:
        await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 700})
    assert (err.value.http_status, err.value.code, err.value.param) == (400, "amount_too_large", "amount")
    assert "is greater than unrefunded amount on charge" in str(err.value.user_message)
    if backend.local:
        assert err.value.user_message == ("Refund amount (€7.00) is greater than unrefunded amount on charge (€6.00)")
    charge = await backend.client.v1.charges.retrieve_async(charge_id(pi))
    assert charge.amount_refunded == 400


async def test_refund_of_unknown_payment_intent_is_resource_missing(backend: Backend) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        await backend.client.v1.refunds.create_async(params={"payment_intent": "pi_doesnotexist000000000000"})
    assert (err.value.http_status, err.value.code, err.value.param) == (400, "resource_missing", "payment_intent")


async def test_pending_refund_settles_to_succeeded(backend: Backend) -> None:
    pi = await paid_intent(backend.client, "pm_card_pendingRefund", amount=900)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    assert refund.status == "pending"
    charge = await backend.client.v1.charges.retrieve_async(charge_id(pi))
    assert charge.amount_refunded == 900  # pending refunds already count on the charge

    settled = await wait_for_refund(backend, refund.id, "succeeded")
    assert settled.amount == 900
    if backend.local:
        updates = [e for e in backend.local.events("refund.updated") if e["data"]["object"]["id"] == refund.id]
        assert [e["data"]["previous_attributes"]["status"] for e in updates] == ["pending"]


async def test_refund_fail_card_fails_later_and_gives_the_money_back(backend: Backend) -> None:
    pi = await paid_intent(backend.client, "pm_card_refundFail", amount=800)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    # Stripe's testing guide: the refund "will appear to be successful at first".
    assert refund.status in ({"succeeded"} if backend.local else {"succeeded", "pending"})

    failed = await wait_for_refund(backend, refund.id, "failed")
    assert failed.failure_reason == "expired_or_canceled_card"
    charge = await backend.client.v1.charges.retrieve_async(charge_id(pi))
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    again = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    assert again.amount == 800
    if backend.local:
        types = [e["type"] for e in backend.local.events() if e["data"]["object"].get("id") == refund.id]
        assert types == ["refund.created", "refund.failed", "refund.updated", "charge.refund.updated"]


async def test_forced_late_failure_of_a_succeeded_refund(backend: Backend) -> None:
    server = backend.server
    pi = await paid_intent(backend.client, amount=500)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    assert refund.status == "succeeded"

    server.force_refund_failure(refund.id, "lost_or_stolen_card")
    failed = await wait_for_refund(backend, refund.id, "failed")
    assert failed.failure_reason == "lost_or_stolen_card"
    charge = await backend.client.v1.charges.retrieve_async(charge_id(pi))
    assert charge.amount_refunded == 0
    with pytest.raises(ValueError):
        server.force_refund_failure(refund.id)


async def test_refund_metadata_update_merges_and_unsets(backend: Backend) -> None:
    pi = await paid_intent(backend.client)
    refund = await backend.client.v1.refunds.create_async(
        params={"payment_intent": pi.id, "metadata": {"a": "1", "b": "2"}}
    )
    updated = await backend.client.v1.refunds.update_async(refund.id, params={"metadata": {"b": "", "c": "3"}})
    assert updated.to_dict()["metadata"] == {"a": "1", "c": "3"}
    fetched = await backend.client.v1.refunds.retrieve_async(refund.id)
    assert fetched.to_dict()["metadata"] == {"a": "1", "c": "3"}


async def test_card_refunds_cannot_be_canceled(backend: Backend) -> None:
    pi = await paid_intent(backend.client)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    with pytest.raises(stripe.InvalidRequestError) as err:
        await backend.client.v1.refunds.cancel_async(refund.id)
    assert err.value.http_status == 400


async def test_unknown_refund_is_404(backend: Backend) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        await backend.client.v1.refunds.retrieve_async("re_doesnotexist0000000000")
    assert (err.value.http_status, err.value.code) == (404, "resource_missing")
