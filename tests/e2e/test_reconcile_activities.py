"""The paging activity on its own: it resumes from its last heartbeat, 429s are waited out, a refused read ends it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.deps import Deps
from activities.reconciliation import ReconciliationActivities, StagePage
from email_providers.factory import make_provider
from email_providers.from_settings import email_settings
from payment_adapters.base import ProcessorUnavailable
from runtime.settings import Settings
from tests.e2e.reconcile_support import WINDOW, FakeSource
from ticketing.models import Processor
from ticketing.reconciliation_records import Page, ProcessorRefundRecord, ProcessorRefundStatus, ReconWindow
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
