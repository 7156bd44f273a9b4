"""List endpoints: filters, cursor pagination both ways, events."""

from __future__ import annotations

import pytest
import stripe

from .support import Backend, charge_id, paid_intent, wait_for


async def _five_refunds(backend: Backend) -> tuple[stripe.PaymentIntent, list[str]]:
    pi = await paid_intent(backend.client, amount=1000)
    ids = []
    for _ in range(5):
        refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id, "amount": 100})
        ids.append(refund.id)
    return pi, ids


async def test_refund_list_pages_newest_first_both_ways(backend: Backend) -> None:
    pi, ids = await _five_refunds(backend)
    newest_first = list(reversed(ids))
    refunds = backend.client.v1.refunds

    page1 = await refunds.list_async(params={"payment_intent": pi.id, "limit": 2})
    page2 = await refunds.list_async(params={"payment_intent": pi.id, "limit": 2, "starting_after": page1.data[-1].id})
    page3 = await refunds.list_async(params={"payment_intent": pi.id, "limit": 2, "starting_after": page2.data[-1].id})
    assert page1.to_dict()["object"] == "list" and page1.url == "/v1/refunds"
    assert [[r.id for r in p.data] for p in (page1, page2, page3)] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:],
    ]
    assert [p.has_more for p in (page1, page2, page3)] == [True, True, False]

    back = await refunds.list_async(params={"payment_intent": pi.id, "limit": 2, "ending_before": page3.data[0].id})
    assert [r.id for r in back.data] == newest_first[2:4]
    assert back.has_more is True

    walked = [r.id async for r in page1.auto_paging_iter()]
    assert walked == newest_first


async def test_refund_list_filters_by_charge_and_created(backend: Backend) -> None:
    pi, ids = await _five_refunds(backend)
    refunds = backend.client.v1.refunds

    by_charge = await refunds.list_async(params={"charge": charge_id(pi), "limit": 100})
    assert sorted(r.id for r in by_charge.data) == sorted(ids)
    since = await refunds.list_async(params={"payment_intent": pi.id, "created": {"gte": pi.created}, "limit": 100})
    assert len(since.data) == 5
    before = await refunds.list_async(params={"payment_intent": pi.id, "created": {"lt": pi.created}})
    assert before.data == [] and before.has_more is False
    future = await refunds.list_async(params={"created": {"gt": pi.created + 86400}})
    assert future.data == []


async def test_list_limit_out_of_range_is_rejected(backend: Backend) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        await backend.client.v1.refunds.list_async(params={"limit": 101})
    assert err.value.http_status == 400


async def test_events_list_and_retrieve(backend: Backend) -> None:
    pi = await paid_intent(backend.client)
    refund = await backend.client.v1.refunds.create_async(params={"payment_intent": pi.id})

    async def refund_events() -> list[stripe.Event]:
        page = await backend.client.v1.events.list_async(
            params={"type": "refund.created", "created": {"gte": refund.created}, "limit": 100}
        )
        return [e for e in page.data if e.data.object["id"] == refund.id]

    found = await wait_for(refund_events, bool, timeout=backend.settle_timeout, interval=backend.poll_interval)
    event = await backend.client.v1.events.retrieve_async(found[0].id)
    assert (event.object, event.type) == ("event", "refund.created")
    assert event.data.object["amount"] == 1000
    assert event.livemode is False
