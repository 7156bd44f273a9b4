"""Balance transactions: what a charge, a refund and a late refund failure do to the balance.

Real Stripe settles in the account's currency, so a EUR charge on a USD account
has a USD balance transaction with an `exchange_rate`; the assertions on
amounts allow for that (`_same_money`), the ones on sign, type and source do not.
"""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from .support import Backend, charge_id, paid_intent, wait_for_refund


def _same_money(txn: stripe.BalanceTransaction, amount: int, currency: str) -> bool:
    """The transaction moves `amount` (signed) of `currency`, or its conversion (live)."""
    if txn.currency == currency:
        return txn.amount == amount and txn.exchange_rate is None
    return txn.exchange_rate is not None and (txn.amount > 0) == (amount > 0)


async def test_a_charge_credits_a_charge_entry_less_fees(backend: Backend) -> None:
    pi = await paid_intent(backend.client, amount=2_000)
    charge = await backend.client.v1.charges.retrieve_async(charge_id(pi))
    assert isinstance(charge.balance_transaction, str) and charge.balance_transaction.startswith("txn_")

    txn = await backend.client.v1.balance_transactions.retrieve_async(charge.balance_transaction)

    assert (txn.object, txn.type, txn.reporting_category, txn.source) == (
        "balance_transaction",
        "charge",
        "charge",
        charge.id,
    )
    assert _same_money(txn, 2_000, "eur")
    assert txn.fee > 0 and txn.net == txn.amount - txn.fee


async def test_a_refund_debits_a_refund_entry_found_by_source(backend: Backend) -> None:
    pi = await paid_intent(backend.client, amount=2_000)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 700})
    assert isinstance(refund.balance_transaction, str) and refund.balance_transaction.startswith("txn_")

    txn = await backend.client.v1.balance_transactions.retrieve_async(refund.balance_transaction)
    by_source = await backend.client.v1.balance_transactions.list_async(params={"source": refund.id})

    assert (txn.type, txn.reporting_category, txn.source) == ("refund", "refund", refund.id)
    assert _same_money(txn, -700, "eur")
    assert [t.id for t in by_source.data] == [txn.id]
    assert by_source.has_more is False and by_source.url == "/v1/balance_transactions"


async def test_a_late_refund_failure_credits_a_refund_failure_entry(backend: Backend) -> None:
    pi = await paid_intent(backend.client, "pm_card_refundFail", amount=1_500)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    failed = await wait_for_refund(backend, refund.id, "failed")
    assert isinstance(failed.failure_balance_transaction, str)
    assert failed.balance_transaction == refund.balance_transaction

    credit = await backend.client.v1.balance_transactions.retrieve_async(failed.failure_balance_transaction)
    debit = await backend.client.v1.balance_transactions.retrieve_async(str(refund.balance_transaction))
    both = await backend.client.v1.balance_transactions.list_async(params={"source": refund.id, "limit": 10})
    only_failure = await backend.client.v1.balance_transactions.list_async(
        params={"source": refund.id, "type": "refund_failure"}
    )

    assert (credit.type, credit.reporting_category, credit.source) == ("refund_failure", "refund_failure", refund.id)
    assert credit.amount == -debit.amount and credit.currency == debit.currency
    assert [t.id for t in both.data] == [credit.id, debit.id]  # newest first
    assert [t.id for t in only_failure.data] == [credit.id]


async def test_refund_entries_are_listed_by_type_and_created_in_pages(backend: Backend) -> None:
    pi = await paid_intent(backend.client, amount=3_000)
    made = []
    for _ in range(3):
        refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 500})
        made.append(refund.balance_transaction)
    since: Any = {"gte": pi.created}

    first = await backend.client.v1.balance_transactions.list_async(
        params={"type": "refund", "created": since, "limit": 2}
    )
    walked = [t async for t in first.auto_paging_iter()]
    ours = [t.id for t in walked if t.id in made]

    assert len(first.data) == 2
    assert ours == list(reversed(made))
    assert all(t.type == "refund" and t.created >= pi.created for t in walked)
    future = await backend.client.v1.balance_transactions.list_async(params={"created": {"gt": pi.created + 86_400}})
    assert future.data == []


async def test_currency_filter(backend: Backend) -> None:
    pi = await paid_intent(backend.client, amount=1_000, currency="gbp")
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})
    txn = await backend.client.v1.balance_transactions.retrieve_async(str(refund.balance_transaction))

    same = await backend.client.v1.balance_transactions.list_async(
        params={"source": refund.id, "currency": txn.currency}
    )
    other = await backend.client.v1.balance_transactions.list_async(
        params={"source": refund.id, "currency": "jpy" if txn.currency != "jpy" else "eur"}
    )
    assert [t.id for t in same.data] == [txn.id]
    assert other.data == []


async def test_an_unknown_payout_or_transaction_is_an_invalid_request(backend: Backend) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await backend.client.v1.balance_transactions.retrieve_async("txn_doesnotexist000000000")
    assert missing.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError):
        await backend.client.v1.balance_transactions.list_async(params={"payout": "po_doesnotexist000000000"})


async def test_a_refund_list_expands_each_refunds_balance_transactions_inline(backend: Backend) -> None:
    """One read per page gives every refund with its debit (and a failed one's credit): what reconciliation pages."""
    failing_pi = await paid_intent(backend.client, "pm_card_refundFail", amount=1_500)
    kept_pi = await paid_intent(backend.client, amount=1_500)
    failing = await backend.client.v1.refunds.create_async(params={"payment_intent": failing_pi.id, "amount": 600})
    kept = await backend.client.v1.refunds.create_async(params={"payment_intent": kept_pi.id, "amount": 400})
    await wait_for_refund(backend, failing.id, "failed")
    expand = ["data.balance_transaction", "data.failure_balance_transaction"]

    pages = [
        await backend.client.v1.refunds.list_async(params={"payment_intent": pi.id, "limit": 10, "expand": expand})
        for pi in (failing_pi, kept_pi)
    ]

    assert [[r.id for r in page.data] for page in pages] == [[failing.id], [kept.id]]
    (failed,), (ok,) = pages[0].data, pages[1].data
    for refund, made in ((failed, failing), (ok, kept)):
        debit = refund.balance_transaction
        assert isinstance(debit, stripe.BalanceTransaction)
        assert (debit.id, debit.type, debit.source) == (made.balance_transaction, "refund", refund.id)
        assert _same_money(debit, -refund.amount, refund.currency)
    credit, debit = failed.failure_balance_transaction, failed.balance_transaction
    assert isinstance(credit, stripe.BalanceTransaction) and isinstance(debit, stripe.BalanceTransaction)
    assert (credit.type, credit.source) == ("refund_failure", failed.id)
    assert credit.amount == -debit.amount
    assert ok.to_dict().get("failure_balance_transaction") is None  # absent or null: nothing to expand
    plain = await backend.client.v1.refunds.list_async(params={"payment_intent": kept_pi.id, "limit": 10})
    assert [r.balance_transaction for r in plain.data] == [kept.balance_transaction]  # an id unless asked


async def test_a_refund_retrieve_expands_its_balance_transaction(backend: Backend) -> None:
    pi = await paid_intent(backend.client, amount=1_000)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 300})

    got = await backend.client.v1.refunds.retrieve_async(refund.id, params={"expand": ["balance_transaction"]})

    assert isinstance(got.balance_transaction, stripe.BalanceTransaction)
    assert (got.balance_transaction.id, got.balance_transaction.source) == (refund.balance_transaction, refund.id)
    assert got.to_dict().get("failure_balance_transaction") is None


async def test_expanding_a_list_field_without_data_is_an_invalid_request(backend: Backend) -> None:
    """On a list, paths start with `data.`: a bare field names nothing on the list object."""
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await backend.client.v1.refunds.list_async(params={"limit": 1, "expand": ["balance_transaction"]})
    assert refused.value.http_status == 400
    assert "balance_transaction" in str(refused.value.user_message)
