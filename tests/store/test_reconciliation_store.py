"""Reconciliation in the store, on SQLite and PostgreSQL: runs, idempotent items, finance's transitions, staging."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.builders import NOW
from ticketing.errors import InvalidTransition, NotFound
from ticketing.money import Money
from ticketing.reconciliation import DiscrepancyClass, Finding, ItemState, SuggestedAction, item_id
from ticketing.reconciliation.unapplied import SOURCE, unapplied_payment
from ticketing.reconciliation_records import ReconWindow
from ticketing.store import reconciliation as rs
from ticketing.store.engine import Store

WINDOW = ReconWindow(start=NOW - timedelta(days=1), end=NOW)
RUN = f"reconcile/stripe/{WINDOW.label}"


def _finding(cls: DiscrepancyClass, key: str, **kw: object) -> Finding:
    return Finding(cls=cls, key=key, action=SuggestedAction.INVESTIGATE, ledger={"refund_id": key}, **kw)


async def test_run_passes_and_listing(any_store: Store) -> None:
    async with any_store.transaction() as conn:
        first = await rs.begin_run(conn, run_id=RUN, processor="stripe", window=WINDOW, dry_run=False, now=NOW)
        await rs.update_run(conn, RUN, now=NOW, status="completed", counts={"foreign": 2}, open_items=0)
        again = await rs.begin_run(conn, run_id=RUN, processor="stripe", window=WINDOW, dry_run=True, now=NOW)
    assert (first, again) == (1, 2)
    async with any_store.transaction() as conn:
        run = await rs.get_run(conn, RUN)
        runs = await rs.list_runs(conn, processor="stripe")
        with pytest.raises(NotFound):
            await rs.get_run(conn, "reconcile/stripe/nope")
    assert run.passes == 2 and run.status == "running" and run.dry_run and run.counts == {}
    assert run.window_start == WINDOW.start and [r.id for r in runs] == [RUN]


async def test_findings_are_idempotent_and_reopen(any_store: Store) -> None:
    found = [
        _finding(DiscrepancyClass.STATUS_MISMATCH, "rf_1", refund_id="rf_1"),
        _finding(DiscrepancyClass.FOREIGN, "re_x"),
    ]
    async with any_store.transaction() as conn:
        one = await rs.record_findings(conn, processor="stripe", run_id=RUN, pass_no=1, findings=found, now=NOW)
        two = await rs.record_findings(conn, processor="stripe", run_id=RUN, pass_no=2, findings=found, now=NOW)
        items = await rs.list_items(conn, run_id=RUN)
        queue = await rs.list_items(conn, state=ItemState.OPEN)
    assert one == {"new": 2, "reopened": 0, "seen": 0}
    assert two == {"new": 0, "reopened": 0, "seen": 2}
    assert len(items) == 2
    # Foreign refunds are counted, never queued.
    assert [i.cls for i in queue] == [DiscrepancyClass.STATUS_MISMATCH]
    iid = item_id("stripe", DiscrepancyClass.STATUS_MISMATCH, "rf_1")
    assert queue[0].id == iid and queue[0].refund_id == "rf_1" and queue[0].ledger == {"refund_id": "rf_1"}

    async with any_store.transaction() as conn:
        acked = await rs.transition_item(conn, iid, ItemState.ACKNOWLEDGED, reason="looking", actor="fin", now=NOW)
        same = await rs.transition_item(conn, iid, ItemState.ACKNOWLEDGED, reason="again", actor="fin", now=NOW)
        done = await rs.transition_item(conn, iid, ItemState.RESOLVED, reason="refunded by bank", actor="fin", now=NOW)
        with pytest.raises(InvalidTransition):
            await rs.transition_item(conn, iid, ItemState.ACKNOWLEDGED, reason="x", actor="fin", now=NOW)
    assert acked.state is ItemState.ACKNOWLEDGED and same.reason == "looking"
    assert (done.state, done.actor, done.reason) == (ItemState.RESOLVED, "fin", "refunded by bank")

    async with any_store.transaction() as conn:
        three = await rs.record_findings(conn, processor="stripe", run_id=RUN, pass_no=3, findings=found, now=NOW)
        back = await rs.get_item(conn, iid)
        counts = await rs.count_items(conn, run_id=RUN)
        open_counts = await rs.count_items(conn, processor="stripe", open_only=True)
    assert three["reopened"] == 1 and back.state is ItemState.OPEN and back.actor == "reconciliation"
    assert counts == {"status-mismatch": 1, "foreign": 1} and open_counts == {"status-mismatch": 1}


async def test_a_finding_recorded_once_is_never_added_again_nor_reopened(any_store: Store) -> None:
    found = unapplied_payment(order_code="ORD-1", payment_id="pi_1", received=Money(amount=7150, currency="EUR"),
                              reason_type="order-expired", reason="the order has expired", order_status="expired")
    async with any_store.transaction() as conn:
        iid, new = await rs.record_finding_once(conn, processor="stripe", source=SOURCE, finding=found, now=NOW)
        again_iid, again = await rs.record_finding_once(conn, processor="stripe", source=SOURCE, finding=found,
                                                        now=NOW)
        item = await rs.get_item(conn, iid)
    assert (new, again, again_iid) == (True, False, iid)
    assert (item.cls, item.state, item.severity.label, item.suggested_action.value) == (
        DiscrepancyClass.PAYMENT_UNAPPLIED, ItemState.OPEN, "high", "refund-or-reinstate"
    )
    assert (item.order_code, item.amount, item.currency, item.first_seen_run) == ("ORD-1", 7150, "EUR", SOURCE)
    assert item.processor_side == {"payment_id": "pi_1", "amount": 7150, "currency": "EUR"}
    async with any_store.transaction() as conn:
        await rs.transition_item(conn, iid, ItemState.RESOLVED, reason="refunded at Stripe", actor="fin", now=NOW)
        _, third = await rs.record_finding_once(conn, processor="stripe", source=SOURCE, finding=found, now=NOW)
        assert (await rs.get_item(conn, iid)).state is ItemState.RESOLVED and third is False


async def test_staging_overwrites_a_page_read_twice(any_store: Store) -> None:
    rows = [
        {"record_id": f"re_{i}", "ledger_refund_id": f"rf_{i % 3}", "idempotency_key": None, "link": "pi_1",
         "data": {"id": f"re_{i}"}}
        for i in range(5)
    ]
    async with any_store.transaction() as conn:
        await rs.stage(conn, RUN, "refund", rows)
        await rs.stage(conn, RUN, "refund", rows[:2])
        counts = await rs.staged_counts(conn, RUN)
        page = await rs.staged_page(conn, RUN, "refund", after="re_1", limit=2)
        named = await rs.staged_by_ledger(conn, RUN, ["rf_0"])
        ids = await rs.staged_ids(conn, RUN, "refund", ["re_4", "re_9"])
        await rs.clear_staged(conn, RUN)
        gone = await rs.staged_counts(conn, RUN)
    assert counts == {"refund": 5} and [d["id"] for d in page] == ["re_2", "re_3"]
    assert sorted(d["id"] for d in named) == ["re_0", "re_3"] and ids == {"re_4"} and gone == {}


async def test_one_execution_at_a_time_per_window(any_store: Store) -> None:
    alive = {"reconcile/stripe/scheduled-1": True, "reconcile/stripe/gone": False}

    async def owner_alive(workflow_id: str) -> bool:
        return alive.get(workflow_id, False)

    async def begin(workflow_id: str) -> int:
        async with any_store.transaction() as conn:
            return await rs.begin_run(
                conn, run_id=RUN, processor="stripe", window=WINDOW, dry_run=False, now=NOW,
                workflow_id=workflow_id, owner_alive=owner_alive,
            )

    assert await begin("reconcile/stripe/scheduled-1") == 1
    assert await begin("reconcile/stripe/scheduled-1") == 1  # its own retried start: the same pass
    with pytest.raises(rs.WindowBusy):
        await begin(RUN)  # "run now" while the scheduled run is at it
    alive["reconcile/stripe/scheduled-1"] = False  # it was terminated mid-run
    assert await begin(RUN) == 2
    async with any_store.transaction() as conn:
        assert (await rs.get_run(conn, RUN)).workflow_id == RUN
