"""The Stripe reconciliation source against the stand-in, over HTTP with the real SDK.

Each test has a fresh account and a frozen account clock, so every object's
`created` second is chosen by the test and a window holds exactly what it says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
import pytest_asyncio

from devtools.stripe_server import StripeServer, StripeServerConfig
from payment_adapters.base import ProcessorRejected, ProcessorUnavailable
from payment_adapters.registry import reconciliation_source
from payment_adapters.stripe import StripeAdapter
from payment_adapters.stripe_client import build_stripe_client
from payment_adapters.stripe_reconciliation import StripeReconciliationSource
from runtime.settings import Settings, StripeSettings
from ticketing.models import Processor
from ticketing.money import Money
from ticketing.reconciliation_records import Page, ProcessorRefundStatus, ReconWindow

T = TypeVar("T")
START = datetime(2026, 11, 3, tzinfo=UTC)
DAY = ReconWindow(start=START, end=START + timedelta(days=1))


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    async with StripeServer(StripeServerConfig(tick_seconds=0.02)) as server:
        server.set_clock(frozen_at=START.timestamp() + 3600)
        yield server


@pytest.fixture
def source(stripe: StripeServer) -> StripeReconciliationSource:
    return StripeReconciliationSource(build_stripe_client(stripe.config.api_key, base_url=stripe.base_url))


@pytest.fixture
def adapter(stripe: StripeServer) -> StripeAdapter:
    return StripeAdapter(stripe.config.api_key, stripe.config.webhook_secret, base_url=stripe.base_url)


async def _intent(stripe: StripeServer, amount: int = 10_000, card: str = "pm_card_visa", currency: str = "eur") -> str:
    client = build_stripe_client(stripe.config.api_key, base_url=stripe.base_url)
    params: Any = {"amount": amount, "currency": currency, "payment_method": card, "confirm": True}
    return str((await client.v1.payment_intents.create_async(params=params)).id)


async def _refund(adapter: StripeAdapter, intent: str, n: int, amount: int = 100, currency: str = "EUR") -> str:
    made = await adapter.create_refund(
        payment_reference=intent,
        amount=Money(amount=amount, currency=currency),
        idempotency_key=f"refund/ORD{n}/rf_{n}",
        metadata={"refund_id": f"rf_{n}", "order_code": f"ORD{n}", "workflow_id": f"refund/ORD{n}/rf_{n}"},
    )
    return made.id


async def _walk(fetch: Callable[[str | None], Awaitable[Page[T]]]) -> tuple[list[T], int]:
    items: list[T] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await fetch(cursor)
        pages += 1
        items.extend(page.items)
        if page.next_cursor is None:
            return items, pages
        assert page.items, "only the last page may be empty"
        cursor = page.next_cursor


async def test_refunds_are_read_in_pages_each_exactly_once(
    stripe: StripeServer, source: StripeReconciliationSource, adapter: StripeAdapter
) -> None:
    intents = [await _intent(stripe) for _ in range(3)]
    made = [await _refund(adapter, intents[n % 3], n) for n in range(25)]

    found, pages = await _walk(lambda cursor: source.refund_page(DAY, cursor, 10))

    assert pages == 3
    assert sorted(r.id for r in found) == sorted(made)
    assert len({r.id for r in found}) == 25
    # Over Stripe's cap a page is still 100 at most: one page here.
    _, big = await _walk(lambda cursor: source.refund_page(DAY, cursor, 500))
    assert big == 1


async def test_the_window_is_half_open_on_created(
    stripe: StripeServer, source: StripeReconciliationSource, adapter: StripeAdapter
) -> None:
    intent = await _intent(stripe)
    window = ReconWindow(start=START + timedelta(hours=2), end=START + timedelta(hours=3))
    start, end = int(window.start.timestamp()), int(window.end.timestamp())
    at: dict[int, str] = {}
    for n, second in enumerate((start - 1, start, end - 1, end)):
        stripe.set_clock(frozen_at=second + 0.9)
        at[second] = await _refund(adapter, intent, n)

    refunds, _ = await _walk(lambda cursor: source.refund_page(window, cursor, 100))
    entries, _ = await _walk(lambda cursor: source.balance_page(window, cursor, 100))

    inside = {at[start], at[end - 1]}
    assert {r.id for r in refunds} == inside
    assert {e.source for e in entries} == inside
    # A start inside a second excludes that second: created is whole seconds.
    later = ReconWindow(start=window.start + timedelta(milliseconds=500), end=window.end)
    refunds, _ = await _walk(lambda cursor: source.refund_page(later, cursor, 100))
    assert {r.id for r in refunds} == {at[end - 1]}


async def test_metadata_and_money_are_mapped(
    stripe: StripeServer, source: StripeReconciliationSource, adapter: StripeAdapter
) -> None:
    intent = await _intent(stripe, card="pm_card_refundFail", amount=5_000, currency="gbp")
    refund_id = await _refund(adapter, intent, 7, amount=1_250, currency="GBP")
    stripe.force_refund_failure(refund_id)
    foreign = stripe.dashboard_refund(await _intent(stripe), amount=300, metadata={"shop": "other"})

    refunds, _ = await _walk(lambda cursor: source.refund_page(DAY, cursor, 100))
    ours = next(r for r in refunds if r.id == refund_id)
    assert ours.processor is Processor.STRIPE
    assert (ours.amount, ours.currency, ours.payment_reference) == (1_250, "GBP", intent)
    assert ours.status is ProcessorRefundStatus.FAILED
    assert ours.failure_reason == "expired_or_canceled_card"
    assert (ours.ledger_refund_id, ours.order_code, ours.workflow_id, ours.idempotency_key) == (
        "rf_7",
        "ORD7",
        "refund/ORD7/rf_7",
        "refund/ORD7/rf_7",
    )
    assert ours.balance_transaction and ours.failure_balance_transaction
    assert ours.created_at == datetime.fromtimestamp(int(START.timestamp()) + 3600, UTC)
    theirs = next(r for r in refunds if r.id == foreign["id"])
    assert (theirs.ledger_refund_id, theirs.idempotency_key, theirs.status) == (None, None, "succeeded")

    entries, _ = await _walk(lambda cursor: source.balance_page(DAY, cursor, 100))
    by_id = {e.id: e for e in entries}
    debit, credit = by_id[ours.balance_transaction], by_id[ours.failure_balance_transaction]
    assert (debit.type, debit.reporting_category, debit.amount, debit.currency, debit.source) == (
        "refund",
        "refund",
        -1_250,
        "GBP",
        refund_id,
    )
    assert (credit.type, credit.reporting_category, credit.amount, credit.source) == (
        "refund_failure",
        "refund_failure",
        1_250,
        refund_id,
    )
    assert all(e.type != "charge" for e in entries)  # payments are not refund money
    # The refund page brought the same two entries inline (one read, not two); the failures-only
    # listing has the credit alone.
    assert ours.balance_entries == [debit, credit]
    assert theirs.balance_entries and [e.source for e in theirs.balance_entries] == [foreign["id"]]
    failures, _ = await _walk(lambda cursor: source.balance_page(DAY, cursor, 100, failures_only=True))
    assert [e.id for e in failures] == [credit.id]


async def test_balance_entries_page_across_types(
    stripe: StripeServer, source: StripeReconciliationSource, adapter: StripeAdapter
) -> None:
    failing = await _intent(stripe, card="pm_card_refundFail")
    plain = await _intent(stripe)
    refunds = [await _refund(adapter, plain, n) for n in range(4)]
    refunds += [await _refund(adapter, failing, 10 + n) for n in range(3)]
    for refund_id in refunds[4:]:
        stripe.force_refund_failure(refund_id)

    entries, pages = await _walk(lambda cursor: source.balance_page(DAY, cursor, 3))

    assert pages == 4  # 7 refund + 3 refund_failure entries, 3 a page
    assert len({e.id for e in entries}) == len(entries) == 10
    assert sorted(e.source or "" for e in entries if e.type == "refund") == sorted(refunds)
    assert sorted(e.source or "" for e in entries if e.type == "refund_failure") == sorted(refunds[4:])
    assert sum(e.amount for e in entries) == -400  # only the four that did not fail moved money
    failures, pages = await _walk(lambda cursor: source.balance_page(DAY, cursor, 2, failures_only=True))
    assert pages == 2 and sorted(e.source or "" for e in failures) == sorted(refunds[4:])


async def test_refunds_for_payment_include_dashboard_refunds_and_duplicates(
    stripe: StripeServer, source: StripeReconciliationSource, adapter: StripeAdapter
) -> None:
    intent = await _intent(stripe, amount=1_000)
    ours = await _refund(adapter, intent, 1, amount=300)
    twin = stripe.duplicate_refund(ours)
    dashboard = stripe.dashboard_refund(intent, amount=200)
    other = await _intent(stripe)
    await _refund(adapter, other, 2)

    found = await source.refunds_for_payment(intent)

    assert sorted(r.id for r in found) == sorted([ours, twin["id"], dashboard["id"]])
    keys = [r.idempotency_key for r in found if r.idempotency_key]
    assert keys == ["refund/ORD1/rf_1", "refund/ORD1/rf_1"]  # the same key twice: paid twice


async def test_undelivered_events_are_listed_and_delivered_ones_are_not(
    stripe: StripeServer, source: StripeReconciliationSource, adapter: StripeAdapter
) -> None:
    stripe.set_webhook_url("http://127.0.0.1:9/unreachable")  # nothing listens: retries pending
    stripe.state.config.webhook_max_attempts = 1  # give up at once
    intent = await _intent(stripe, card="pm_card_refundFail", amount=2_000)
    first = await _refund(adapter, intent, 1)
    stripe.set_webhook_url(None)  # events from here on have no endpoint: nothing to deliver
    dropped = await _refund(adapter, intent, 2)
    stripe.drop_webhooks(None, object_id=dropped)
    stripe.force_refund_failure(dropped)
    silent = await _refund(adapter, intent, 3)
    stripe.fail_refund_silently(silent)

    events, _ = await _walk(lambda cursor: source.undelivered_event_page(DAY, cursor, 2))

    by_refund: dict[str | None, set[str]] = {}
    for event in events:
        by_refund.setdefault(event.processor_refund_id, set()).add(event.type)
    assert by_refund == {
        first: {"refund.created"},
        dropped: {"refund.failed", "refund.updated", "charge.refund.updated"},
    }
    replay = await source.event(next(e.id for e in events if e.type == "refund.failed"))
    assert replay.refund is not None and replay.refund.id == dropped and replay.refund.status == "failed"


@pytest.mark.parametrize(("mode", "status"), [("rate_limited", 429), ("before", 500)])
async def test_a_busy_processor_raises_processor_unavailable(
    stripe: StripeServer, source: StripeReconciliationSource, mode: Any, status: int
) -> None:
    stripe.inject_faults(1.0, mode=mode, method="GET", count=3)
    for read in (
        source.refund_page(DAY, None, 10),
        source.balance_page(DAY, None, 10),
        source.undelivered_event_page(DAY, None, 10),
    ):
        with pytest.raises(ProcessorUnavailable) as err:
            await read
        assert err.value.status == status
    assert (await source.refund_page(DAY, None, 10)).items == []  # the fault was spent
    with pytest.raises(ProcessorRejected):
        await source.refund_page(DAY, "re_missing", 10)


def test_the_registry_has_a_source_for_stripe_only(stripe: StripeServer) -> None:
    settings = Settings(stripe=StripeSettings(base_url=stripe.base_url))
    assert isinstance(reconciliation_source(settings, Processor.STRIPE), StripeReconciliationSource)
    assert reconciliation_source(settings, Processor.MANUAL) is None
    assert reconciliation_source(settings, Processor.FREE) is None
