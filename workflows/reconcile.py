"""ReconcileWorkflow: one processor, one window; the ledger and the processor compared, disagreements
healed where the refund rule allows it and the step is idempotent, the rest queued for finance.

Phases: stage the processor's refunds, balance entries and undelivered events
(side by side, sharing the read rate; pages into the store, cursors here) -> classify -> heal -> re-check earlier
items -> finish. Only ids and counts cross the history; the run continues as
new after `continue_after_steps` activities with its cursor. Healing never
writes the ledger: it tells the refund's own workflow (a signal), starts the
late-failure follow-up by its deterministic id, or restarts an orphaned refund
by its workflow id; a start that finds the run already there is fine.

Window: explicit in the input, or the last whole window that ended a
settlement lag before the schedule's `TemporalScheduledStartTime`. The store
row (and a direct start's workflow id) is `reconcile/{processor}/{window}`; a
scheduled run's own workflow id is the schedule's, with its time appended.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, WorkflowAlreadyStartedError
from temporalio.types import MethodAsyncSingleParam
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.reconciliation import (
        BeginRun,
        ClassifyWindow,
        FinishRun,
        HealDone,
        HealPage,
        HealStep,
        Recheck,
        ReconciliationActivities,
        RunSummary,
        StagePage,
    )
    from activities.reconciliation_report import ReconciliationReportActivities, ReconReportRequest  # recon-ops
    from ticketing.reconciliation.classify import Ages
    from ticketing.reconciliation.models import ReconRunStatus, ReconVisibility
    from ticketing.reconciliation_windows import window_for_run
    from ticketing.refunds import late_answer_workflow_id, late_failure_workflow_id
    from workflows import options  # recon-ops
    from workflows.contracts import ProcessorUpdate, RefundInput
    from workflows.reconcile_contracts import (
        ReconcileInput,
        ReconcileResult,
        ReconCursor,
        reconcile_workflow_id,
    )
    from workflows.refund import RefundWorkflow
    from workflows.search_attributes import PAYMENT_PROCESSOR, RECON_OPEN_ITEMS, RECON_STATUS

__all__ = ["ReconcileInput", "ReconcileResult", "ReconcileWorkflow"]

A = TypeVar("A")
R = TypeVar("R")
SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
KINDS = ("refund", "balance", "event")
EVENTS_FIRST = "recon-stage-events-first"  # runs started before it read the three kinds side by side
# Refunds bring their balance entries inline, so the balance listing is a page of failures: read it
# beside the events first, then the refunds alone at the whole rate. Older runs: events, then both.
REFUNDS_ALONE = "recon-stage-refunds-alone"
NEXT = {
    "stage": "classify",
    "classify": "heal",
    "heal": "recheck",
    "recheck": "finish",
}
READ_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)


@workflow.defn(name="Reconcile")
class ReconcileWorkflow:
    def __init__(self) -> None:
        self.cursor: ReconCursor | None = None

    @workflow.run
    async def run(self, req: ReconcileInput) -> ReconcileResult:
        st = req.state or await self._begin(req)
        self.cursor = st
        timing = req.timing
        try:
            while st.phase != "done":
                if st.steps >= timing.continue_after_steps or workflow.info().is_continue_as_new_suggested():
                    st.steps = 0
                    workflow.continue_as_new(req.model_copy(update={"state": st}))
                st.steps += 1
                await self._step(req, st)
        except ActivityError as err:
            await self._finish(req, st, ReconRunStatus.FAILED, error=str(err.cause or err)[:500])
            raise ApplicationError(f"reconciliation failed: {err.cause or err}", type="recon-failed") from err
        summary = await self._finish(req, st, ReconRunStatus.COMPLETED)
        await self._report(req, st)  # recon-ops: report to blob storage, email to finance
        return ReconcileResult(
            run_id=st.run_id,
            processor=req.processor,
            window=st.window,
            status=ReconRunStatus.COMPLETED,
            dry_run=req.dry_run,
            counts=summary.counts,
            found=summary.found,
            healed=st.healed,
            heal_failed=st.heal_failed,
            resolved=st.resolved,
            open_items=summary.open_items,
            staged=summary.staged,
        )

    @workflow.query(name="progress")
    def progress(self) -> ReconCursor | None:
        return self.cursor

    # --- phases ---------------------------------------------------------------------------

    async def _begin(self, req: ReconcileInput) -> ReconCursor:
        lag = timedelta(hours=req.settlement_lag_hours)
        scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START)
        window = req.window or window_for_run(
            scheduled or workflow.now(), length=timedelta(hours=req.window_hours), lag=lag
        )
        run_id = reconcile_workflow_id(req.processor.value, window.label)
        pass_no = await self._activity(
            ReconciliationActivities.begin_reconciliation,
            BeginRun(run_id=run_id, processor=req.processor, window=window, dry_run=req.dry_run),
        )
        workflow.upsert_search_attributes(
            [RECON_STATUS.value_set(ReconVisibility.RUNNING), PAYMENT_PROCESSOR.value_set(req.processor.value)]
        )
        # Ages are judged at the end of the settlement lag, not the clock: a re-run judges alike.
        return ReconCursor(run_id=run_id, pass_no=pass_no, window=window, as_of=window.end + lag)

    async def _step(self, req: ReconcileInput, st: ReconCursor) -> None:
        timing = req.timing
        ages = Ages(
            as_of=st.as_of,
            pending_overdue_business_days=timing.pending_overdue_business_days,
            manual_stale_days=timing.manual_stale_days,
            approval_expiry_hours=timing.approval_expiry_hours,
        )
        if st.phase == "stage":
            await self._stage(req, st, ages)
        elif st.phase == "classify":
            workflow.set_current_details(f"Comparing the ledger with {req.processor.value} for {st.window.label}")
            found = await self._activity(
                ReconciliationActivities.classify_reconciliation,
                ClassifyWindow(
                    run_id=st.run_id, pass_no=st.pass_no, processor=req.processor, window=st.window, ages=ages,
                    page=timing.classify_page, rate_per_second=timing.read_rate_per_second,
                    judged_while_staging=st.judged_while_staging,
                ),
                long=True,
            )
            st.counts = {"new": found.new, "reopened": found.reopened, "seen": found.seen}
            self._next(st, skip_to="finish" if req.dry_run else None)
        elif st.phase == "heal":
            await self._heal_page(req, st)
        elif st.phase == "recheck":
            workflow.set_current_details("Re-checking open items from earlier runs")
            st.resolved += await self._activity(
                ReconciliationActivities.recheck_reconciliation_items,
                Recheck(
                    run_id=st.run_id, pass_no=st.pass_no, processor=req.processor, ages=ages,
                    limit=timing.recheck_limit, rate_per_second=timing.read_rate_per_second,
                ),
                long=True,
            )
            self._next(st)
        elif st.phase == "finish":
            st.phase = "done"

    async def _stage(self, req: ReconcileInput, st: ReconCursor, ages: Ages) -> None:
        """The small listings first (undelivered events, refund failures), then the refunds alone at the whole rate.

        The refunds are judged page by page as they are staged (the events and failures they are
        judged with are all staged by then), so classifying waits for the processor no longer;
        a run that staged refunds before this code judges them all in the classify step.
        """
        timing = req.timing
        kinds = [k for k in KINDS if k not in st.staged_done]
        if workflow.patched(REFUNDS_ALONE):
            small = [k for k in kinds if k != "refund"]
            kinds = small or kinds
            if not small and "refund" not in st.stage_cursors:
                st.judged_while_staging = True
        elif "event" in kinds and workflow.patched(EVENTS_FIRST):
            # Undelivered events are usually a page or none: read alone first, so the refunds and
            # balance entries then split the whole read rate instead of a third of it each.
            kinds = ["event"]
        workflow.set_current_details(
            f"Reading {req.processor.value} records for {st.window.label}: "
            + ", ".join(f"{st.staged.get(k, 0)} {k}" for k in KINDS)
        )
        results = await asyncio.gather(
            *(
                self._activity(
                    ReconciliationActivities.stage_processor_page,
                    StagePage(
                        run_id=st.run_id, processor=req.processor, window=st.window, kind=kind,
                        cursor=st.stage_cursors.get(kind), page_size=timing.page_size,
                        max_pages=timing.pages_per_activity, rate_per_second=timing.read_rate_per_second / len(kinds),
                        judge=ages if st.judged_while_staging and kind == "refund" else None,
                    ),
                    long=True,
                )
                for kind in kinds
            )
        )
        for kind, result in zip(kinds, results, strict=True):
            st.staged[kind] = st.staged.get(kind, 0) + result.staged
            st.stage_cursors[kind] = result.cursor
            if result.done:
                st.staged_done.append(kind)
        if len(st.staged_done) == len(KINDS):
            self._next(st)

    def _next(self, st: ReconCursor, skip_to: str | None = None) -> None:
        st.phase = skip_to or NEXT[st.phase]
        st.cursor = None

    async def _heal_page(self, req: ReconcileInput, st: ReconCursor) -> None:
        steps: list[HealStep] = await self._activity(
            ReconciliationActivities.reconciliation_heal_page,
            HealPage(run_id=st.run_id, pass_no=st.pass_no, after=st.cursor or "", limit=req.timing.heal_page),
        )
        if not steps:
            self._next(st)
            return
        workflow.set_current_details(f"Healing: {st.healed} done so far")
        healed: list[str] = []
        events: list[tuple[str, str]] = []
        for step in steps:
            if await self._heal(req, step):
                healed.append(step.item_id)
                events += step.events
            else:
                st.heal_failed += 1
        if healed:
            await self._activity(
                ReconciliationActivities.reconciliation_mark_healed,
                HealDone(run_id=st.run_id, item_ids=healed, events=events),
            )
        st.healed += len(healed)
        st.cursor = steps[-1].item_id

    async def _heal(self, req: ReconcileInput, step: HealStep) -> bool:
        """One idempotent step through the refund's own workflow; False when it could not be taken."""
        how = step.route if step.action == "replay-event" else step.action
        news = (
            ProcessorUpdate(
                processor_refund_id=step.processor_refund_id,
                status=step.processor_status,
                failure_reason=step.failure_reason,
            )
            if step.processor_refund_id and step.processor_status
            else None
        )
        if how == "signal-refund":
            return news is not None and await self._signal(step.workflow_id, news)
        if how == "start-late-answer":
            return news is not None and await self._start_late_answer(req, step, news)
        if how not in ("start-late-failure", "restart-refund"):
            return False
        late = how == "start-late-failure"
        inp = RefundInput(
            order_code=step.order_code,
            actor="reconciliation",
            refund_id=step.refund_id,
            existing_refund_id=step.refund_id,
            late_failure_reason=(step.failure_reason or step.processor_status) if late else None,
            timing=req.refund_timing,
        )
        try:
            child = await workflow.start_child_workflow(
                RefundWorkflow.run,
                inp,
                id=late_failure_workflow_id(step.refund_id, step.attempt) if late else step.workflow_id,
                task_queue=workflow.info().task_queue,
                parent_close_policy=ParentClosePolicy.ABANDON,
                # A follow-up run happens once per attempt, ever; a restart follows a closed run.
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE
                if late
                else WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                static_summary=(
                    f"Refund {step.refund_id} on order {step.order_code} failed after success (found by reconciliation)"
                    if late
                    else f"Refund {step.refund_id} on order {step.order_code} restarted by reconciliation"
                ),
            )
        except WorkflowAlreadyStartedError:
            # Already there: the step was taken before (a follow-up), or the run is back (a restart),
            # in which case it still gets the news, as the webhook's signal-with-start gives it.
            return late or news is None or await self._signal(step.workflow_id, news)
        if news is not None and not late:
            await child.signal(RefundWorkflow.processor_update, news)
        return True

    async def _start_late_answer(self, req: ReconcileInput, step: HealStep, news: ProcessorUpdate) -> bool:
        """A refund-error's own processor refund ended after its run closed: the follow-up run, once per attempt."""
        # Taken before (already started): the follow-up settled it, or is settling it.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                RefundWorkflow.run,
                RefundInput(
                    order_code=step.order_code, actor="reconciliation", refund_id=step.refund_id,
                    existing_refund_id=step.refund_id, late_news=news, timing=req.refund_timing,
                ),
                id=late_answer_workflow_id(step.refund_id, step.attempt),
                task_queue=workflow.info().task_queue,
                parent_close_policy=ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=(
                    f"Refund {step.refund_id} on order {step.order_code}: {news.status.value} after refund-error "
                    "(found by reconciliation)"
                ),
            )
        return True

    async def _signal(self, workflow_id: str, news: ProcessorUpdate) -> bool:
        try:
            await workflow.get_external_workflow_handle(workflow_id).signal("processor_update", news)
        except FailureError:
            workflow.logger.warning("refund run %s closed before the signal", workflow_id)
            return False
        return True

    async def _finish(
        self, req: ReconcileInput, st: ReconCursor, status: str, error: str | None = None
    ) -> RunSummary:
        summary: RunSummary = await self._activity(
            ReconciliationActivities.finish_reconciliation,
            FinishRun(
                run_id=st.run_id, processor=req.processor, window=st.window, status=status, healed=st.healed,
                heal_failed=st.heal_failed, resolved=st.resolved, error=error,
            ),
        )
        recon_status = ReconVisibility.at_end(failed=status == ReconRunStatus.FAILED, open_items=summary.open_items)
        workflow.upsert_search_attributes(
            [RECON_STATUS.value_set(recon_status), RECON_OPEN_ITEMS.value_set(float(summary.open_items))]
        )
        workflow.set_current_details(
            f"{st.window.label}: {summary.found} found, {st.healed} healed, {st.resolved} resolved, "
            f"{summary.open_items} open in the queue"
        )
        return summary

    async def _activity(self, method: MethodAsyncSingleParam[Any, A, R], arg: A, *, long: bool = False) -> R:
        return await workflow.execute_activity_method(
            method,
            arg,
            start_to_close_timeout=timedelta(hours=2) if long else timedelta(minutes=2),
            heartbeat_timeout=timedelta(minutes=2) if long else None,
            retry_policy=READ_RETRY,
        )

    # --- recon-ops: the report and finance's email -------------------------------------------

    async def _report(self, req: ReconcileInput, st: ReconCursor) -> None:
        """CSV + JSON summary in blob storage; an email to finance when this run left items open it did not heal.

        Written after the run's row is final, so the report and the row agree; a re-run of the
        window rewrites the same report and emails again only for its own pass.
        """
        report = await workflow.execute_activity_method(
            ReconciliationReportActivities.write_reconciliation_report,
            ReconReportRequest(run_id=st.run_id),
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=options.STORE_RETRY,
        )
        if report.for_finance and not req.dry_run:
            await workflow.execute_activity_method(
                ReconciliationReportActivities.send_reconciliation_email,
                ReconReportRequest(run_id=st.run_id),
                task_queue=options.sibling_queue(workflow.info().task_queue, "email"),
                start_to_close_timeout=options.EMAIL_TIMEOUT,
                schedule_to_close_timeout=options.EMAIL_SCHEDULE_TO_CLOSE,
                retry_policy=options.EMAIL_RETRY,
            )
