"""Reconciliation end to end on the dev server and the real store; the processor faked at its list APIs.

Each discrepancy injected alone is found exactly once with its evidence; a
clean window of 1,000 refunds finds nothing; a random mix is found in full and
nothing else; a second run of the same window heals nothing twice and reports
the same items.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecutionStatus,
)

from tests.e2e.reconcile_support import (
    FAST,
    INJECTIONS,
    WINDOW,
    FakeSource,
    World,
    error_then_paid,
    late_failure,
    late_failure_of_an_earlier_window,
    missed_webhook,
    money_movement,
    orphaned,
    reconcile,
    stray_credit,
)
from tests.harness import Harness, running
from ticketing.models import Processor
from ticketing.reconciliation import DiscrepancyClass as C
from ticketing.reconciliation import ItemState, ReconItem, Severity, SuggestedAction
from ticketing.reconciliation.totals import totals_key
from ticketing.reconciliation_records import ReconWindow
from ticketing.refunds import late_answer_workflow_id, late_failure_workflow_id
from ticketing.states import RefundStatus
from ticketing.store import reconciliation as rs
from ticketing.store.engine import Store
from ticketing.store.orders import load_history, load_order
from ticketing.store.refunds import load_refund
from ticketing.store.tables import refunds, webhook_events
from workflows.contracts import RefundResult
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_contracts import ReconcileInput, reconcile_workflow_id
from workflows.search_attributes import RECON_OPEN_ITEMS

RUN_ID = reconcile_workflow_id("stripe", WINDOW.label)


@pytest.fixture
def world_store(request: pytest.FixtureRequest) -> Store:
    """SQLite unless a test asks for PostgreSQL too (`BOTH_STORES`)."""
    kind = getattr(request, "param", "sqlite")
    return request.getfixturevalue({"sqlite": "sqlite_store", "postgres": "pg_store"}[kind])


BOTH_STORES = pytest.mark.parametrize(
    "world_store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def inline_balance() -> bool:
    """Refunds bring their balance entries inline (Stripe's expanded list); a test may parametrize it."""
    return True


@pytest_asyncio.fixture
async def world(
    temporal_client: Client, world_store: Store, tmp_path: Path, queue_prefix: str, inline_balance: bool
) -> AsyncIterator[World]:
    async with running(temporal_client, world_store, tmp_path, queue_prefix) as app:
        fake = FakeSource(inline_balance=inline_balance)
        app.deps.recon_sources[Processor.STRIPE] = fake
        w = World(app=app, fake=fake, parked_queue=f"{queue_prefix}parked")
        yield w
        for wid in w.parked:
            await temporal_client.get_workflow_handle(wid).terminate("test over")


async def _items(app: Harness) -> list[ReconItem]:
    async with app.store.read() as conn:
        return await rs.list_items(conn, run_id=RUN_ID, limit=10_000)


@pytest.mark.parametrize("name", sorted(INJECTIONS))
async def test_each_class_alone_is_found_once(world: World, name: str) -> None:
    await world.clean(3)
    expected = await INJECTIONS[name](world)
    result = await reconcile(world.app.client, world.app.prefix, dry_run=True)

    items = await _items(world.app)
    assert {(i.cls, i.key) for i in items} == expected
    assert len(items) == len(expected)
    assert result.found == len(expected) and result.healed == 0
    assert result.counts == {cls.value: 1 for cls, _ in expected}
    assert result.staged["refund"] == len(world.fake.refunds)
    item = items[0]
    # Both sides' evidence, as far as each side has the refund.
    if item.cls in (C.FOREIGN, C.MISSING_IN_LEDGER):
        assert item.ledger is None and item.processor_side and item.processor_side["id"] == item.key
    elif item.cls is C.OVER_REFUNDED:
        assert item.processor_side and item.processor_side["refunded"] == 7500
        assert item.ledger == {"order_code": item.order_code, "refundable_max": 7000, "currency": "EUR"}
        assert item.amount == 500
    elif item.cls in (C.MISSING_AT_PROCESSOR, C.ORPHANED, C.STALE_MANUAL):
        assert item.ledger and item.ledger["refund_id"] == item.refund_id and item.processor_side is None
    else:
        assert item.ledger and item.processor_side
        assert item.ledger["refund_id"] == item.refund_id
        assert item.processor_side["id"] == item.processor_refund_id
    if item.cls is C.FOREIGN:
        assert item.state is ItemState.RESOLVED and result.open_items == 0  # counted, never queued
    else:
        assert item.state is ItemState.OPEN and result.open_items == 1
    async with world.app.store.read() as conn:
        run = await rs.get_run(conn, RUN_ID)
    assert run.status == "completed" and run.counts == result.counts and run.dry_run


@pytest.mark.parametrize("inline_balance", [True, False], ids=["inline", "listed"])
async def test_a_succeeded_refund_without_its_balance_entry_is_found(world: World, inline_balance: bool) -> None:
    """Money movement, whether the refunds bring their entries inline or the balance listing has them."""
    await world.clean(3)
    expected = await money_movement(world)
    result = await reconcile(world.app.client, world.app.prefix, dry_run=True)
    (item,) = await _items(world.app)
    assert {(item.cls, item.key)} == expected and result.found == 1
    assert item.processor_side and item.processor_side["status"] == "succeeded"
    assert item.processor_side["balance_entries"] == []
    async with world.app.store.read() as conn:
        run = await rs.get_run(conn, RUN_ID)
    # Its 35.00 never left the balance: the processor's total is the three clean refunds'.
    assert run.totals == {"EUR": {"processor": 10_500, "ledger": 14_000, "difference": -3_500}}


async def test_a_duplicate_read_pages_apart_is_found_once(world: World) -> None:
    """Each page is judged as it is staged; a ledger key whose second refund comes pages later is judged again whole."""
    await world.clean(60)
    order = await world.order()
    refund = await world.refund(order, RefundStatus.SUCCEEDED, processor_refund_id="re_0000first")
    world.processor_refund(order, refund, pid="re_0000first")  # the first page (the fake pages in id order)
    world.processor_refund(order, refund, pid="re_zzzzsecond")  # the last page: the same key again
    dashboard = world.processor_refund(order, None, ours=False, pid="re_zzzzthird", amount=500)  # same payment
    result = await reconcile(world.app.client, world.app.prefix, dry_run=True)  # 50 a page
    found = {(i.cls, i.key) for i in await _items(world.app)}
    assert found == {
        (C.DUPLICATE_AT_PROCESSOR, refund.id),
        (C.OVER_REFUNDED, order.payment.reference or ""),  # 3 x 35.00 + 5.00 of 70.00 refundable
        (C.MISSING_IN_LEDGER, dashboard.id),
    }
    assert result.found == 3


async def test_evidence_of_the_lost_late_failure(world: World) -> None:
    await late_failure(world)
    await reconcile(world.app.client, world.app.prefix, dry_run=True)
    (item,) = await _items(world.app)
    assert item.suggested_action is SuggestedAction.START_LATE_FAILURE
    assert item.ledger and item.ledger["status"] == "refunded"
    assert item.processor_side and item.processor_side["status"] == "failed"
    assert item.processor_side["failure_reason"] == "expired_or_canceled_card"
    assert item.processor_side["settlement"] == "late-failure"
    assert item.severity >= 3


@pytest.mark.parametrize("inline_balance", [True, False], ids=["inline", "listed"])
async def test_clean_window_of_1000_refunds_has_no_items(world: World, inline_balance: bool) -> None:
    await world.clean(1000)
    world.fake.rate_limit_every = 7  # 429s now and then: paced, backed off, nothing lost
    result = await reconcile(world.app.client, world.app.prefix)
    assert result.found == 0 and result.counts == {} and result.open_items == 0
    # Inline, the balance listing is read for refund failures only (none here).
    assert result.staged == ({"refund": 1000} if inline_balance else {"refund": 1000, "balance": 1000})
    assert world.fake.refused > 0
    async with world.app.store.read() as conn:
        run = await rs.get_run(conn, RUN_ID)
    assert run.totals == {"EUR": {"processor": 3_500_000, "ledger": 3_500_000, "difference": 0}}
    # Ids and counts only cross the history: its size does not grow with the window.
    history = await world.app.client.get_workflow_handle(world.app.prefix + RUN_ID).fetch_history()
    largest = max(len(e.SerializeToString()) for e in history.events)
    assert len(history.events) < 150 and largest < 4096, (len(history.events), largest)


@BOTH_STORES
async def test_random_mix_is_found_in_full_and_nothing_else(world: World) -> None:
    rng = random.Random(11)
    expected: set[tuple[C, str]] = set()
    names = sorted(INJECTIONS)
    for _ in range(40):
        expected |= await INJECTIONS[rng.choice(names)](world)
        await world.clean(rng.randint(0, 3))
    timing = FAST.model_copy(update={"continue_after_steps": 3})  # continue-as-new mid-run, cursor carried
    result = await reconcile(world.app.client, world.app.prefix, dry_run=True, timing=timing)
    found = {(i.cls, i.key) for i in await _items(world.app)}
    assert found == expected
    assert result.found == len(expected)


@BOTH_STORES
async def test_healing_is_idempotent_over_two_runs(world: World) -> None:
    late = await late_failure(world)
    orphan = await orphaned(world)
    webhook = await missed_webhook(world)
    await world.clean(5)
    first = await reconcile(world.app.client, world.app.prefix)
    assert first.healed == 3 and first.heal_failed == 0
    ((_, late_refund),) = late
    ((_, orphan_refund),) = orphan

    # The follow-up run took the late failure through the refund rule: refund-error, finance's turn.
    for _ in range(100):
        async with world.app.store.read() as conn:
            refund = await load_refund(conn, late_refund)
        if refund.status is RefundStatus.FAILED:
            break
        await asyncio.sleep(0.1)
    assert refund.status is RefundStatus.FAILED and refund.failure_reason == "expired_or_canceled_card"
    # The orphan runs again under its own id, waiting for finance.
    async with world.app.store.read() as conn:
        orphan_row = await load_refund(conn, orphan_refund)
    desc = await world.app.client.get_workflow_handle(orphan_row.workflow_id).describe()
    assert desc.status == WorkflowExecutionStatus.RUNNING
    first_items = {(i.id, i.cls) for i in await _items(world.app)}

    second = await reconcile(world.app.client, world.app.prefix)
    assert second.healed == 0  # nothing healed twice
    items = await _items(world.app)
    assert {(i.id, i.cls) for i in items} == first_items  # the same report
    by_cls = {i.cls: i for i in items}
    # Where both sides now agree, the item is resolved by reconciliation; the missed webhook's refund
    # run is parked here (nobody polls it), so its news is still not taken and it stays open.
    assert by_cls[C.STATUS_MISMATCH].state is ItemState.RESOLVED
    assert by_cls[C.STATUS_MISMATCH].actor == "reconciliation"
    assert by_cls[C.ORPHANED].state is ItemState.RESOLVED
    assert by_cls[C.MISSED_WEBHOOK].state is ItemState.OPEN and by_cls[C.MISSED_WEBHOOK].healed_at
    assert second.resolved == 2
    # One follow-up run, ever, for the late failure.
    follow_up = late_failure_workflow_id(late_refund, 1)
    runs = [wf async for wf in world.app.client.list_workflows(f"WorkflowId = '{follow_up}'")]
    assert len(runs) == 1
    ((_, event_id),) = webhook
    async with world.app.store.read() as conn:
        seen = (await conn.execute(webhook_events.select().where(webhook_events.c.id == event_id))).first()
    assert seen is not None  # a late delivery of the replayed event is a duplicate


@pytest.mark.parametrize("inline_balance", [True, False], ids=["inline", "listed"])
async def test_a_late_failure_of_an_earlier_windows_refund_is_found_by_the_window_its_news_is_in(
    world: World, inline_balance: bool
) -> None:
    """The buyer's money came back to us days after the refund, and the webhook that said so never arrived.
    The refund's own window was reconciled clean before; only this window's undelivered event and the
    failure's credit tell. Judged against the processor, it is the missed webhook, healed by the late-failure
    run; the window's totals (refunds made in it) are untouched."""
    await world.clean(3)
    refund, event = await late_failure_of_an_earlier_window(world)
    result = await reconcile(world.app.client, world.app.prefix)

    items = await _items(world.app)
    assert {(i.cls, i.key) for i in items} == {(C.MISSED_WEBHOOK, event.id)}
    (item,) = items
    assert item.refund_id == refund.id and item.suggested_action is SuggestedAction.REPLAY_EVENT
    assert item.processor_side and item.processor_side["settlement"] == "late-failure"
    assert result.healed == 1 and result.heal_failed == 0
    for _ in range(100):
        async with world.app.store.read() as conn:
            after = await load_refund(conn, refund.id)
        if after.status is RefundStatus.FAILED:
            break
        await asyncio.sleep(0.1)
    assert after.status is RefundStatus.FAILED and after.failure_reason == "expired_or_canceled_card"
    async with world.app.store.read() as conn:
        run = await rs.get_run(conn, RUN_ID)
    assert run.totals == {"EUR": {"processor": 10_500, "ledger": 10_500, "difference": 0}}

    again = await reconcile(world.app.client, world.app.prefix)
    assert again.healed == 0  # one follow-up run, ever
    runs = [wf async for wf in world.app.client.list_workflows(
        f"WorkflowId = '{late_failure_workflow_id(refund.id, 1)}'")]
    assert len(runs) == 1


async def test_closed_confirming_refund_is_restarted_with_the_news(world: World) -> None:
    """The processor settled a refund whose run is gone: the run starts again by its id and is told, as a
    webhook's signal-with-start would; the ledger moves through the refund rule in that run."""
    order = await world.order()
    pid = "re_settled_while_nobody_listened"
    refund = await world.refund(order, RefundStatus.CONFIRMING, processor_refund_id=pid)
    world.processor_refund(order, refund, pid=pid)
    first = await reconcile(world.app.client, world.app.prefix)
    (item,) = await _items(world.app)
    assert (item.cls, item.suggested_action) == (C.STATUS_MISMATCH, SuggestedAction.RESTART_REFUND)
    assert first.healed == 1
    done = await world.app.client.get_workflow_handle(refund.workflow_id, result_type=RefundResult).result()
    assert done.status == "refunded"
    second = await reconcile(world.app.client, world.app.prefix)
    assert second.healed == 0 and second.resolved == 1


@BOTH_STORES
async def test_a_refund_error_paid_later_is_made_refunded_once(world: World) -> None:
    """Ledger refund-error, its own processor refund succeeded, its run closed: the follow-up run settles it
    through the refund rule (refunded, the receipt); a re-run of the window heals nothing."""
    ((_, refund_id),) = await error_then_paid(world)
    await world.clean(2)
    first = await reconcile(world.app.client, world.app.prefix)
    (item,) = await _items(world.app)
    assert (item.cls, item.suggested_action) == (C.STATUS_MISMATCH, SuggestedAction.START_LATE_ANSWER)
    assert item.processor_side and item.processor_side["settlement"] == "late-answer"
    assert first.healed == 1 and first.heal_failed == 0
    follow_up = late_answer_workflow_id(refund_id, 1)
    done = await world.app.client.get_workflow_handle(follow_up, result_type=RefundResult).result()
    assert done.status == "refunded"
    async with world.app.store.read() as conn:
        refund = await load_refund(conn, refund_id)
        order = await load_order(conn, refund.order_code)
        history = [h.type for h in await load_history(conn, refund.order_code)]
    assert refund.status is RefundStatus.SUCCEEDED and order.refunded_total.amount == refund.amount.amount
    assert history.count("item-refunded") == 1 and history.count("refund-receipt-sent") == 1

    second = await reconcile(world.app.client, world.app.prefix)
    assert second.healed == 0 and second.resolved == 1
    (again,) = await _items(world.app)
    assert again.state is ItemState.RESOLVED
    runs = [wf async for wf in world.app.client.list_workflows(f"WorkflowId = '{follow_up}'")]
    assert len(runs) == 1  # one follow-up run, ever


async def test_items_of_earlier_windows_are_rechecked_and_resolved(world: World) -> None:
    ((_, refund_id),) = await INJECTIONS["status-mismatch-error-but-paid"](world)
    ((_, movement_key),) = await INJECTIONS["money-movement"](world)  # only its window can judge it
    first = await reconcile(world.app.client, world.app.prefix)
    assert first.counts == {"status-mismatch": 1, "money-movement": 1} and first.open_items == 2
    later = ReconWindow(start=WINDOW.end, end=WINDOW.end + timedelta(days=1))
    # Still disagreeing: a later window's run re-checks the item at the processor and leaves it open.
    assert (await reconcile(world.app.client, world.app.prefix, window=later)).resolved == 0
    async with world.app.store.transaction() as conn:  # finance fixed the ledger by hand
        await conn.execute(refunds.update().where(refunds.c.id == refund_id).values(status="refunded"))
    dry = await reconcile(world.app.client, world.app.prefix, window=later, dry_run=True)
    assert dry.resolved == 0  # a dry run resolves nothing
    again = await reconcile(world.app.client, world.app.prefix, window=later)
    assert again.resolved == 1 and again.open_items == 1
    by_cls = {i.cls: i for i in await _items(world.app)}
    item = by_cls[C.STATUS_MISMATCH]
    assert (item.state, item.actor, item.reason) == (ItemState.RESOLVED, "reconciliation", "both sides agree")
    assert by_cls[C.MONEY_MOVEMENT].state is ItemState.OPEN and by_cls[C.MONEY_MOVEMENT].key == movement_key


async def test_scheduled_run_takes_its_window_from_the_scheduled_time(world: World) -> None:
    """A backfilled schedule action at 2026-11-03 00:00 (lag 24 h) reconciles 2026-11-01; the run shows
    `ReconStatus` and `ReconOpenItems` to the Web UI."""
    await late_failure(world)
    client, prefix = world.app.client, world.app.prefix
    handle = await client.create_schedule(
        f"{prefix}reconcile-stripe",
        Schedule(
            action=ScheduleActionStartWorkflow(
                ReconcileWorkflow.run,
                ReconcileInput(processor=Processor.STRIPE, settlement_lag_hours=24, dry_run=True, timing=FAST),
                id=f"{prefix}reconcile/stripe/scheduled",
                task_queue=f"{prefix}orders",
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(days=1))]),
            state=ScheduleState(paused=True),
        ),
    )
    try:
        at = datetime(2026, 11, 3, tzinfo=UTC)
        await handle.backfill(
            ScheduleBackfill(start_at=at, end_at=at + timedelta(seconds=1), overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        )
        run = None
        for _ in range(200):
            async with world.app.store.read() as conn:
                runs = await rs.list_runs(conn)
            run = runs[0] if runs else None
            if run and run.status == "completed":
                break
            await asyncio.sleep(0.1)
        assert run and run.id == RUN_ID and run.status == "completed", run
        assert (run.window_start, run.window_end) == (WINDOW.start, WINDOW.end)
        query = f"ReconStatus = 'open-items' AND WorkflowId STARTS_WITH '{prefix}reconcile/stripe/scheduled'"
        found = []
        for _ in range(100):
            found = [w async for w in client.list_workflows(query)]
            if found:
                break
            await asyncio.sleep(0.1)
        assert len(found) == 1
        assert found[0].typed_search_attributes.get(RECON_OPEN_ITEMS) == 1.0
    finally:
        await handle.delete()


# --- a window's totals per currency ------------------------------------------------------------------

TOTALS_KEY = totals_key(WINDOW, "EUR")


@pytest.mark.parametrize("inline_balance", [True, False], ids=["inline", "listed"])
async def test_a_balance_only_discrepancy_is_one_totals_item(world: World, inline_balance: bool) -> None:
    """Money credited back on a refund that still succeeded: every refund agrees, the window's EUR does not."""
    await world.clean(3)
    await stray_credit(world)
    result = await reconcile(world.app.client, world.app.prefix)
    (item,) = await _items(world.app)
    assert (item.cls, item.key, item.severity, item.state) == (
        C.MONEY_MOVEMENT,
        TOTALS_KEY,
        Severity.HIGH,
        ItemState.OPEN,
    )
    assert result.counts == {"money-movement": 1} and result.open_items == 1 and result.healed == 0
    assert (item.amount, item.currency, item.refund_id, item.processor_refund_id) == (-3_500, "EUR", None, None)
    assert item.suggested_action is SuggestedAction.INVESTIGATE
    assert item.processor_side is not None
    evidence = {k: v for k, v in item.processor_side.items() if k != "suggested_action"}
    assert evidence == {
        "window": WINDOW.label,
        "currency": "EUR",
        "processor_total": 10_500,
        "ledger_total": 14_000,
        "difference": -3_500,
        "explained": 0,
        "unexplained": -3_500,
    }
    assert "balance transactions" in item.processor_side["suggested_action"]
    async with world.app.store.read() as conn:
        run = await rs.get_run(conn, RUN_ID)
    assert run.totals == {"EUR": {"processor": 10_500, "ledger": 14_000, "difference": -3_500}}


async def test_a_rerun_finds_the_same_totals_item_and_resolves_it_once_the_window_agrees(world: World) -> None:
    await world.clean(2)
    _, stray = await stray_credit(world)
    await reconcile(world.app.client, world.app.prefix)
    (first,) = await _items(world.app)

    again = await reconcile(world.app.client, world.app.prefix)
    (second,) = await _items(world.app)
    assert second.id == first.id and second.state is ItemState.OPEN  # the same item, not a second one
    assert again.counts == {"money-movement": 1} and again.resolved == 0 and again.open_items == 1

    world.fake.balance.remove(stray)  # the processor reversed it: the window now agrees
    third = await reconcile(world.app.client, world.app.prefix)
    (resolved,) = await _items(world.app)
    assert resolved.id == first.id and third.resolved == 1 and third.open_items == 0
    assert (resolved.state, resolved.actor, resolved.reason) == (
        ItemState.RESOLVED,
        "reconciliation",
        "both sides agree",
    )


async def test_refund_items_that_explain_the_whole_difference_raise_no_totals_item(world: World) -> None:
    await world.clean(3)
    expected: set[tuple[C, str]] = set()
    for name in ("missing-at-processor", "missing-in-ledger", "foreign", "amount-mismatch", "currency-mismatch",
                 "status-mismatch-late-failure", "status-mismatch-error-but-paid", "duplicate-at-processor",
                 "double-settlement", "money-movement", "missed-webhook"):  # fmt: skip
        expected |= await INJECTIONS[name](world)
    result = await reconcile(world.app.client, world.app.prefix, dry_run=True)
    assert {(i.cls, i.key) for i in await _items(world.app)} == expected
    assert result.found == len(expected)
    async with world.app.store.read() as conn:
        run = await rs.get_run(conn, RUN_ID)
    assert all(t["difference"] for t in run.totals.values())  # the totals differ, each refund's item says why


async def test_a_totals_item_counts_what_the_refund_items_explain(world: World) -> None:
    await world.clean(2)
    mismatch = await INJECTIONS["amount-mismatch"](world)  # the processor paid 5.00 less
    await stray_credit(world, amount=1_200)
    await reconcile(world.app.client, world.app.prefix, dry_run=True)
    items = {i.cls: i for i in await _items(world.app)}
    assert {(i.cls, i.key) for i in items.values()} == mismatch | {(C.MONEY_MOVEMENT, TOTALS_KEY)}
    side = items[C.MONEY_MOVEMENT].processor_side or {}
    assert (side["difference"], side["explained"], side["unexplained"]) == (-1_700, -500, -1_200)


async def test_refunds_across_a_window_boundary_agree_in_every_window(world: World) -> None:
    """Refunded in the ledger a second one side of midnight, made at the processor a second the other side:
    both totals count it on the processor refund's clock, so no window disagrees."""
    before = ReconWindow(start=WINDOW.start - timedelta(days=1), end=WINDOW.start)
    after = ReconWindow(start=WINDOW.end, end=WINDOW.end + timedelta(days=1))
    await world.clean(2)
    second = timedelta(seconds=1)
    for ledger_at, processor_at in ((WINDOW.start - second, WINDOW.start + second),
                                    (WINDOW.end - second, WINDOW.end + second),
                                    (WINDOW.end + second, WINDOW.end - second)):  # fmt: skip
        order = await world.order()
        pid = f"re_edge_{processor_at:%H%M%S}_{ledger_at:%d}"
        refund = await world.refund(order, RefundStatus.SUCCEEDED, processor_refund_id=pid, at=ledger_at)
        world.processor_refund(order, refund, pid=pid, at=processor_at)
    results = [await reconcile(world.app.client, world.app.prefix, window=w) for w in (before, WINDOW, after)]
    assert [r.found for r in results] == [0, 0, 0]
    async with world.app.store.read() as conn:
        assert await rs.list_items(conn) == []
        totals = [
            (await rs.get_run(conn, reconcile_workflow_id("stripe", w.label))).totals for w in (before, WINDOW, after)
        ]
    # The processor's clock: 2 clean + the one made just after the start + the one made just before the end.
    assert totals[1] == {"EUR": {"processor": 14_000, "ledger": 14_000, "difference": 0}}
    assert totals[2] == {"EUR": {"processor": 3_500, "ledger": 3_500, "difference": 0}}
    assert totals[0] == {}
