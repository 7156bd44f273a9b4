"""The paging activity on its own: it resumes from its last heartbeat, 429s are waited out, a refused read ends it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.deps import Deps
from activities.reconciliation import FinishRun, ReconciliationActivities, StagePage
from email_providers.factory import make_provider
from email_providers.from_settings import email_settings
from payment_adapters.base import ProcessorUnavailable
from runtime.settings import Settings
from tests.e2e.reconcile_support import WINDOW, FakeSource
from ticketing.models import Processor
from ticketing.reconciliation.models import ReconRunStatus
from ticketing.reconciliation_records import (
    BalanceEntry,
    Page,
    ProcessorRefundRecord,
    ProcessorRefundStatus,
    ReconWindow,
)
from ticketing.store import reconciliation as rs
from ticketing.store.engine import Store

RUN = "reconcile/stripe/test"


def _fake(n: int) -> FakeSource:
    fake = FakeSource()
    fake.refunds = [
        ProcessorRefundRecord(
            processor=Processor.STRIPE, id=f"re_{i:04d}", status=ProcessorRefundStatus.SUCCEEDED, amount=100,
            currency="EUR", created_at=WINDOW.start, payment_reference="pi_x",
        )
        for i in range(n)
    ]
    return fake


def _activities(store: Store, fake: FakeSource, tmp_path: Path) -> ReconciliationActivities:
    settings = Settings(database_url=store.url)
    deps = Deps(settings=settings, store=store, email=make_provider(email_settings(settings.email)))
    deps.recon_sources[Processor.STRIPE] = fake
    return ReconciliationActivities(deps)


async def test_paging_resumes_from_the_last_heartbeat(store: Store, tmp_path: Path) -> None:
    fake = _fake(25)
    acts = _activities(store, fake, tmp_path)
    env = ActivityEnvironment()
    beats: list[tuple[object, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    # A first attempt heartbeated after two pages of ten and then its worker died.
    env.info = dataclasses.replace(env.info, heartbeat_details=["20", 20])
    req = StagePage(run_id=RUN, processor=Processor.STRIPE, window=WINDOW, kind="refund", page_size=10)
    result = await env.run(acts.stage_processor_page, req)
    assert result.done and result.cursor is None and result.staged == 25
    assert fake.calls == 1  # only the page after the checkpoint was read again
    assert beats == [(None, 25)]
    async with store.read() as conn:
        assert await rs.staged_counts(conn, RUN) == {"refund": 5}  # this attempt wrote its own page only


async def test_a_page_budget_returns_the_cursor_and_429s_are_waited_out(store: Store, tmp_path: Path) -> None:
    fake = _fake(35)
    fake.rate_limit_every = 2  # every other read is refused
    acts = _activities(store, fake, tmp_path)
    env = ActivityEnvironment()
    req = StagePage(
        run_id=RUN, processor=Processor.STRIPE, window=WINDOW, kind="refund", page_size=10, max_pages=2,
        rate_per_second=1000.0,
    )
    first = await env.run(acts.stage_processor_page, req)
    assert (first.done, first.cursor, first.staged) == (False, "20", 20)
    rest = await env.run(acts.stage_processor_page, req.model_copy(update={"cursor": first.cursor}))
    assert (rest.done, rest.staged) == (True, 15)
    assert fake.refused >= 3
    async with store.read() as conn:
        assert await rs.staged_counts(conn, RUN) == {"refund": 35}


async def test_a_read_that_fails_ends_the_attempt_after_writing_the_pages_read_before_it(
    store: Store, tmp_path: Path
) -> None:
    """Pages are read ahead of the writer; a refused read fails the attempt, and its heartbeat names what is written."""
    fake = _fake(35)
    read = fake.refund_page

    async def refund_page(window: ReconWindow, cursor: str | None, limit: int) -> Page[ProcessorRefundRecord]:
        if cursor == "20":
            raise ProcessorUnavailable("bad gateway", code="api_error", status=502)
        return await read(window, cursor, limit)

    fake.refund_page = refund_page  # type: ignore[method-assign]
    acts = _activities(store, fake, tmp_path)
    env = ActivityEnvironment()
    beats: list[tuple[object, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    req = StagePage(
        run_id=RUN, processor=Processor.STRIPE, window=WINDOW, kind="refund", page_size=10, rate_per_second=1000.0
    )
    with pytest.raises(ApplicationError) as failed:
        await env.run(acts.stage_processor_page, req)
    assert failed.value.type == "processor-unavailable"
    assert beats == [("10", 10), ("20", 20)]  # a retry resumes after the two pages written
    async with store.read() as conn:
        assert await rs.staged_counts(conn, RUN) == {"refund": 20}


async def test_totals_count_each_balance_transaction_once_whether_listed_or_inline(
    store: Store, tmp_path: Path
) -> None:
    """A run that staged the whole balance listing before an upgrade, then its refunds with their entries inline."""
    debits = [
        BalanceEntry(
            processor=Processor.STRIPE, id=f"txn_{i:04d}", type="refund", reporting_category="refund",
            source=f"re_{i:04d}", amount=-100, currency="EUR", created_at=WINDOW.start,
        )
        for i in range(3)
    ]
    listed, inline = _fake(3), _fake(3)
    listed.inline_balance, listed.balance = False, debits
    for refund, debit in zip(inline.refunds, debits, strict=True):
        refund.balance_entries = [debit]
    env = ActivityEnvironment()
    async with store.transaction() as conn:
        await rs.begin_run(conn, run_id=RUN, processor="stripe", window=WINDOW, dry_run=True, now=datetime.now(UTC))
    page = {"run_id": RUN, "processor": Processor.STRIPE, "window": WINDOW, "rate_per_second": 1000.0}
    await env.run(_activities(store, listed, tmp_path).stage_processor_page, StagePage(kind="balance", **page))
    acts = _activities(store, inline, tmp_path)
    await env.run(acts.stage_processor_page, StagePage(kind="refund", **page))
    await env.run(
        acts.finish_reconciliation,
        FinishRun(run_id=RUN, processor=Processor.STRIPE, window=WINDOW, status=ReconRunStatus.COMPLETED),
    )
    async with store.read() as conn:
        run = await rs.get_run(conn, RUN)
    assert run.staged == {"refund": 3, "balance": 3}
    assert run.totals == {"EUR": {"processor": 300, "ledger": 0, "difference": 300}}  # not 600
