"""Reconcile on its own: staging pages, classify, heal through the refunds' own runs, recheck, finish,
the report; dry runs, continue-as-new and a failing step.

The reconciliation activities are scripted fakes (`ReconFakes`, under the real names); the
refund runs the healing reaches are `StandInRefund`s, so what is asserted is what the workflow
asks of them: which signal, which start, under which id.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.contracts import DeliveryOutcome
from activities.reconciliation import (
    BeginRun,
    ClassifyResult,
    ClassifyWindow,
    FinishRun,
    HealDone,
    HealPage,
    HealStep,
    Recheck,
    RunSummary,
    StagePage,
    StageResult,
)
from activities.reconciliation_report import ReconReportOutcome, ReconReportRequest
from tests.workflows.fakes import Fakes, StandInRefund, refused, running
from tests.workflows.test_fakes import check_fakes
from ticketing.reconciliation_records import ReconWindow
from ticketing.refunds import late_failure_workflow_id
from workflows.contracts import RefundInput, RefundResult
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_contracts import ReconcileInput, ReconcileResult, ReconTiming

WINDOW = ReconWindow(start=datetime(2026, 12, 2, tzinfo=UTC), end=datetime(2026, 12, 3, tzinfo=UTC))
RUN_ID = f"reconcile/stripe/{WINDOW.label}"


class ReconFakes(Fakes):
    """The reconciliation activities, added to the shared fakes."""

    @activity.defn(name="begin_reconciliation")
    async def begin_reconciliation(self, req: BeginRun) -> int:
        return await self.answer("begin_reconciliation", req)

    @activity.defn(name="stage_processor_page")
    async def stage_processor_page(self, req: StagePage) -> StageResult:
        return await self.answer("stage_processor_page", req)

    @activity.defn(name="classify_reconciliation")
    async def classify_reconciliation(self, req: ClassifyWindow) -> ClassifyResult:
        return await self.answer("classify_reconciliation", req)

    @activity.defn(name="reconciliation_heal_page")
    async def reconciliation_heal_page(self, req: HealPage) -> list[HealStep]:
        return await self.answer("reconciliation_heal_page", req)

    @activity.defn(name="reconciliation_mark_healed")
    async def reconciliation_mark_healed(self, req: HealDone) -> int:
        return await self.answer("reconciliation_mark_healed", req)

    @activity.defn(name="recheck_reconciliation_items")
    async def recheck_reconciliation_items(self, req: Recheck) -> int:
        return await self.answer("recheck_reconciliation_items", req)

    @activity.defn(name="finish_reconciliation")
    async def finish_reconciliation(self, req: FinishRun) -> RunSummary:
        return await self.answer("finish_reconciliation", req)

    @activity.defn(name="write_reconciliation_report")
    async def write_reconciliation_report(self, req: ReconReportRequest) -> ReconReportOutcome:
        return await self.answer("write_reconciliation_report", req)

    @activity.defn(name="send_reconciliation_email")
    async def send_reconciliation_email(self, req: ReconReportRequest) -> DeliveryOutcome:
        return await self.answer("send_reconciliation_email", req)


@pytest.fixture
def recon() -> ReconFakes:
    return ReconFakes()


def test_the_reconciliation_fakes_are_the_real_activities() -> None:
    check_fakes(ReconFakes())


def _stage(req: StagePage) -> StageResult:
    """Two pages of refunds, one of balance entries, none of events."""
    if req.kind == "refund" and req.cursor is None:
        return StageResult(cursor="re_page2", done=False, staged=100)
    return StageResult(cursor=None, done=True, staged={"refund": 20, "balance": 7, "event": 0}[req.kind])


def _summary(open_items: int) -> RunSummary:
    return RunSummary(counts={"missing-in-ledger": 2}, found=2, open_items=open_items, staged={"refund": 120})


def _script(
    recon: ReconFakes, *, open_items: int = 1, for_finance: int | None = None, heal: list[list[HealStep]] | None = None
) -> None:
    recon.on("begin_reconciliation", 3).on("stage_processor_page", _stage)
    recon.on("classify_reconciliation", ClassifyResult(new=2, reopened=1, seen=4))
    recon.on("reconciliation_heal_page", [*(heal or []), []])
    recon.on("reconciliation_mark_healed", lambda req: len(req.item_ids))
    recon.on("recheck_reconciliation_items", 1).on("finish_reconciliation", _summary(open_items))
    report = ReconReportOutcome(
        run_id=RUN_ID, csv_uri="mem://r.csv", json_uri="mem://r.json", items=3, open_items=open_items,
        for_finance=open_items if for_finance is None else for_finance,
    )
    recon.on("write_reconciliation_report", report)
    recon.on("send_reconciliation_email", DeliveryOutcome(message_id="m-1", status="sent", ticket_count=0))


def _step(item: str, action: str, refund: str, **kw: object) -> HealStep:
    return HealStep.model_validate({
        "item_id": item, "action": action, "refund_id": refund, "order_code": f"ORD-{refund}",
        "workflow_id": f"refund/{refund}", "attempt": 1, **kw,
    })


async def _reconcile(client: Client, queue: str, wf_id: str, **kw: object) -> ReconcileResult:
    req = ReconcileInput.model_validate({"window": WINDOW, **kw})
    return await client.execute_workflow(ReconcileWorkflow.run, req, id=wf_id, task_queue=queue)


async def test_a_run_stages_classifies_heals_rechecks_and_reports(
    client: Client, recon: ReconFakes, wf_id: str
) -> None:
    running_refund = f"{wf_id}-running"
    steps = [
        _step("i1", "signal-refund", "r1", workflow_id=running_refund, processor_refund_id="re_1",
              processor_status="succeeded"),
        _step("i2", "start-late-failure", "r2", processor_refund_id="re_2", processor_status="failed",
              failure_reason="charge_reversed"),
        _step("i3", "report-only", "r3"),  # nothing the workflow may do: counted as not healed
    ]
    _script(recon, heal=[steps])
    async with running(client, recon, [ReconcileWorkflow, StandInRefund]) as queue:
        refund = await client.start_workflow(
            StandInRefund.run, _input_for("r1"), id=running_refund, task_queue=queue
        )
        try:
            result = await _reconcile(client, queue, wf_id)
            late = await client.get_workflow_handle(late_failure_workflow_id("r2", 1)).describe()
            signalled = await _signals(refund)
        finally:
            for handle in (refund, client.get_workflow_handle(late_failure_workflow_id("r2", 1))):
                await handle.terminate("test over")
    assert (result.run_id, result.status, result.healed, result.heal_failed, result.resolved) == (
        RUN_ID, "completed", 2, 1, 1,
    )
    assert (result.found, result.open_items, result.staged) == (2, 1, {"refund": 120})
    staged = recon.args("stage_processor_page")
    # The small listings (undelivered events, refund failures) side by side sharing the rate, then the
    # refunds (with their own balance entries inline) alone at the whole rate.
    assert sorted(s.kind for s in staged[0:2]) == ["balance", "event"]
    assert {s.rate_per_second for s in staged[0:2]} == {10.0}
    assert [(s.kind, s.cursor, s.rate_per_second) for s in staged[2:]] == [
        ("refund", None, 20.0), ("refund", "re_page2", 20.0),
    ]
    # Refund pages are judged as they are staged (with the run's ages); classify then re-judges what disagreed.
    assert [s.judge is not None for s in staged] == [False, False, True, True]
    assert staged[2].judge == recon.args("classify_reconciliation")[0].ages
    assert recon.args("classify_reconciliation")[0].judged_while_staging
    assert recon.args("classify_reconciliation")[0].pass_no == 3
    [healed] = recon.args("reconciliation_mark_healed")
    assert healed.item_ids == ["i1", "i2"]
    assert [h.after for h in recon.args("reconciliation_heal_page")] == ["", "i3"]
    assert late.workflow_type == "Refund" and signalled == ["processor_update"]
    assert recon.args("finish_reconciliation")[0].status == "completed"
    assert recon.queues("send_reconciliation_email") == {"email"}


def _input_for(refund: str, script: str = "run") -> RefundInput:
    return RefundInput(order_code=f"ORD-{refund}", actor="finance-1", refund_id=refund, reason=script)


async def _signals(handle: WorkflowHandle[StandInRefund, RefundResult]) -> list[str]:
    events = (await handle.fetch_history()).events
    return [e.workflow_execution_signaled_event_attributes.signal_name for e in events
            if e.HasField("workflow_execution_signaled_event_attributes")]


async def test_healing_finds_runs_gone_or_already_there(client: Client, recon: ReconFakes, wf_id: str) -> None:
    """A restart of a run that is back only signals it; a closed run cannot be signalled (not healed);
    a late-failure run already started is the step taken; a restart of a closed run starts it with the news."""
    news = {"processor_refund_id": "re_9", "processor_status": "failed", "failure_reason": "lost"}
    back, closed, gone = f"{wf_id}-back", f"{wf_id}-closed", f"{wf_id}-gone"
    steps = [
        _step("i1", "restart-refund", "r1", workflow_id=back, **news),
        _step("i2", "signal-refund", "r2", workflow_id=closed, **news),
        _step("i3", "replay-event", "r3", route="start-late-failure", **news),
        _step("i4", "restart-refund", "r4", workflow_id=gone, **news),
    ]
    _script(recon, heal=[steps])
    late = late_failure_workflow_id("r3", 1)
    async with running(client, recon, [ReconcileWorkflow, StandInRefund]) as queue:
        handles = {
            name: await client.start_workflow(StandInRefund.run, _input_for(name, script), id=name, task_queue=queue)
            for name, script in ((back, "run"), (closed, "end:refunded"), (late, "run"), (gone, "end:refunded"))
        }
        await handles[closed].result()
        await handles[gone].result()
        try:
            result = await _reconcile(client, queue, wf_id)
            signals = {name: await _signals(client.get_workflow_handle(name)) for name in (back, late, gone)}
            restarted = await client.get_workflow_handle(gone).describe()
        finally:
            for name in (back, late, gone):
                with contextlib.suppress(RPCError):
                    await client.get_workflow_handle(name).terminate("test over")
    assert (result.healed, result.heal_failed) == (3, 1)
    assert recon.args("reconciliation_mark_healed")[0].item_ids == ["i1", "i3", "i4"]
    assert signals == {back: ["processor_update"], late: [], gone: ["processor_update"]}
    assert restarted.run_id != handles[gone].result_run_id  # a new run under the closed one's id


async def test_a_dry_run_finds_and_reports_but_heals_nothing(client: Client, recon: ReconFakes, wf_id: str) -> None:
    _script(recon, open_items=4)
    async with running(client, recon, [ReconcileWorkflow]) as queue:
        result = await _reconcile(client, queue, wf_id, dry_run=True)
    assert result.dry_run and result.healed == 0 and result.open_items == 4
    assert recon.args("reconciliation_heal_page") == [] and recon.args("recheck_reconciliation_items") == []
    assert recon.args("send_reconciliation_email") == []  # finance is mailed for a real run only
    assert recon.args("begin_reconciliation")[0].dry_run


@pytest.mark.parametrize(("open_items", "for_finance"), [(0, 0), (2, 0)], ids=["clean", "all-healed"])
async def test_a_run_with_nothing_for_finance_mails_no_one(
    client: Client, recon: ReconFakes, wf_id: str, open_items: int, for_finance: int
) -> None:
    _script(recon, open_items=open_items, for_finance=for_finance)
    async with running(client, recon, [ReconcileWorkflow]) as queue:
        result = await _reconcile(client, queue, wf_id)
    assert result.open_items == open_items and recon.args("send_reconciliation_email") == []
    assert len(recon.args("write_reconciliation_report")) == 1


async def test_a_long_run_continues_as_new_with_its_cursor(client: Client, recon: ReconFakes, wf_id: str) -> None:
    _script(recon)
    async with running(client, recon, [ReconcileWorkflow]) as queue:
        handle = await client.start_workflow(
            ReconcileWorkflow.run,
            ReconcileInput(window=WINDOW, timing=ReconTiming(continue_after_steps=2)),
            id=wf_id,
            task_queue=queue,
        )
        result = await handle.result()
        first = await client.get_workflow_handle(wf_id, run_id=handle.first_execution_run_id).fetch_history()
    assert first.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    assert len(recon.args("begin_reconciliation")) == 1  # the run and its pass are carried, not begun again
    assert sorted(s.kind for s in recon.args("stage_processor_page")) == ["balance", "event", "refund", "refund"]
    assert result.status == "completed" and result.staged == {"refund": 120}


async def test_a_failing_step_finishes_the_run_as_failed(client: Client, recon: ReconFakes, wf_id: str) -> None:
    _script(recon)
    recon.on("classify_reconciliation", refused("ledger-unreadable"))
    async with running(client, recon, [ReconcileWorkflow]) as queue:
        with pytest.raises(WorkflowFailureError) as failed:
            await _reconcile(client, queue, wf_id)
    assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == "recon-failed"
    [finish] = recon.args("finish_reconciliation")
    assert finish.status == "failed" and finish.error
    assert recon.args("write_reconciliation_report") == []
