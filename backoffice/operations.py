"""The Temporal client facade: start an operation once, read its state back.

An operation id is the workflow id, which carries the request's idempotency
key (`resend/{order}/{key}`), so a repeated request finds the same workflow.
Workflows are started, updated, signalled and queried by method reference
(`operations.start(RefundWorkflow.run, RefundInput(...))`), so mypy checks each
argument against the workflow's own signature.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.types import MethodAsyncSingleParam, MethodSyncOrAsyncNoParam
from temporalio.workflow import UpdateMethodMultiParam

from runtime.codec import PublicText
from ticketing.errors import ActionNotAllowed, NotFound

# A query needs a worker; when none polls, answer without the live details rather than hang.
QUERY_TIMEOUT = timedelta(seconds=3)

OperationState = Literal["running", "completed", "failed"]
W = TypeVar("W")  # the workflow class
A = TypeVar("A")  # the argument
R = TypeVar("R")  # the result

_STATE = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
}


class OperationError(BaseModel):
    type: str
    detail: str


class OperationView(BaseModel):
    operation_id: str
    workflow: str
    status: OperationState
    result: Any = None
    error: OperationError | None = None
    started_at: str | None = None
    closed_at: str | None = None
    details: str | None = None


class Operations:
    # How long a request waits for a workflow's first step (`start_with_update`) before answering without it.
    update_wait = 20.0

    def __init__(self, client: Client, orders_queue: str) -> None:
        self.client = client
        self.orders_queue = orders_queue

    async def start(
        self,
        run: MethodAsyncSingleParam[W, A, Any],
        arg: A,
        *,
        operation_id: str,
        search_attributes: list[SearchAttributePair[Any]] | None = None,
        summary: str | None = None,
        memo: dict[str, Any] | None = None,
        start_delay: timedelta | None = None,
        start_signal: tuple[str, BaseModel] | None = None,
    ) -> str:
        """Start the workflow unless it runs or ran already under this id."""
        from temporalio.exceptions import WorkflowAlreadyStartedError

        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self.client.start_workflow(
                run,
                arg,
                id=operation_id,
                task_queue=self.orders_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes(search_attributes or []),
                static_summary=_public(summary),
                memo=memo,
                start_delay=start_delay,
                start_signal=start_signal[0] if start_signal else None,
                start_signal_args=[start_signal[1]] if start_signal else [],
            )
        return operation_id

    async def start_with_update(
        self,
        run: MethodAsyncSingleParam[W, A, Any],
        arg: A,
        update: UpdateMethodMultiParam[[W], R],
        *,
        operation_id: str,
        search_attributes: list[SearchAttributePair[Any]] | None = None,
        summary: str | None = None,
        memo: dict[str, Any] | None = None,
    ) -> R | None:
        """Start the workflow with an update that answers once it has done its first step (update-with-start);
        the update's refusal comes back as a domain error. None when that step is not confirmed: the run ran
        already under this id and did not fail (its refusal when it did), or no worker answered within
        `update_wait` seconds but the run started."""
        from temporalio.exceptions import WorkflowAlreadyStartedError

        start = WithStartWorkflowOperation(
            run,
            arg,
            id=operation_id,
            task_queue=self.orders_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes(search_attributes or []),
            static_summary=_public(summary),
            memo=memo,
        )
        try:
            result: R = await asyncio.wait_for(
                self.client.execute_update_with_start_workflow(update, start_workflow_operation=start),
                timeout=self.update_wait,
            )
            return result
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            # No worker answered in time (all down, or the queue far behind): the run stands if it started,
            # and does its first step when a worker comes; the caller says so rather than hang.
            if await self.exists(operation_id):
                return None
            raise
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                raise ActionNotAllowed(cause.message, type=cause.type or "update-refused") from err
            raise
        except WorkflowAlreadyStartedError:
            view = await self.view(operation_id)
            if view.error is not None and view.status == "failed":
                raise ActionNotAllowed(view.error.detail, type=view.error.type) from None
            return None

    async def exists(self, operation_id: str) -> bool:
        try:
            await self.client.get_workflow_handle(operation_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def view(self, operation_id: str) -> OperationView:
        handle = self.client.get_workflow_handle(operation_id)
        try:
            desc = await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(
                    f"operation {operation_id} does not exist", type="operation-not-found"
                ) from err
            raise
        status = desc.status
        view = OperationView(
            operation_id=operation_id,
            workflow=desc.workflow_type,
            status=_STATE.get(status, "failed") if status else "running",
            started_at=desc.start_time.isoformat() if desc.start_time else None,
            closed_at=desc.close_time.isoformat() if desc.close_time else None,
        )
        if status is WorkflowExecutionStatus.RUNNING:
            view.details = await _current_details(handle)
        elif status is WorkflowExecutionStatus.COMPLETED:
            view.result = await handle.result()
        elif status is not WorkflowExecutionStatus.CONTINUED_AS_NEW:
            view.error = await _failure(handle, status)
        return view


    async def update(self, operation_id: str, update: UpdateMethodMultiParam[[Any, A], Any], arg: A) -> Any:
        """Run a workflow update; its validator's refusal comes back as a domain error.

        (The SDK types an async update's result as its coroutine, so the result is Any; the argument is checked.)
        """
        handle = self.client.get_workflow_handle(operation_id)
        try:
            return await handle.execute_update(update, arg)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError):
                raise ActionNotAllowed(cause.message, type=cause.type or "update-refused") from err
            raise
        except RPCError as err:
            if _closed(err):
                raise ActionNotAllowed(
                    f"operation {operation_id} has ended and takes no more actions", type="operation-closed"
                ) from err
            raise

    async def offer(self, operation_id: str, update: UpdateMethodMultiParam[[Any, A], R], arg: A) -> R | None:
        """Hand news to a run by update; None when no run took it (ended, ending, unknown, or refused)."""
        handle = self.client.get_workflow_handle(operation_id)
        try:
            return await handle.execute_update(update, arg)
        except WorkflowUpdateFailedError:
            return None  # refused, or the run completed before it handled the update
        except RPCError as err:
            if _closed(err):
                return None
            raise

    async def wait_closed(self, operation_id: str, seconds: float) -> bool:
        """Wait up to `seconds` for the operation to end (any way); True when it did."""
        handle = self.client.get_workflow_handle(operation_id)
        try:
            async with asyncio.timeout(seconds):
                await handle.result()
        except TimeoutError:
            return False
        except (WorkflowFailureError, RPCError):
            pass  # it ended badly or vanished: `view` tells which
        return True

    async def is_running(self, operation_id: str) -> bool:
        try:
            desc = await self.client.get_workflow_handle(operation_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return desc.status is WorkflowExecutionStatus.RUNNING

    async def signal(self, operation_id: str, signal: MethodSyncOrAsyncNoParam[W, None]) -> bool:
        """Signal a running workflow (pause, resume, cancel); False when it has ended or never existed.

        Processor news goes by update (`offer`), so its sender learns whether a run took it.
        """
        try:
            await self.client.get_workflow_handle(operation_id).signal(signal)
        except RPCError as err:
            if _closed(err):
                return False
            raise
        return True

    async def query(self, operation_id: str, query: MethodSyncOrAsyncNoParam[W, R]) -> R | None:
        """A query's typed answer, or None when no worker answers in time or the run is gone."""
        try:
            return await self.client.get_workflow_handle(operation_id).query(query, rpc_timeout=QUERY_TIMEOUT)
        except (RPCError, WorkflowQueryFailedError):
            return None


def _closed(err: RPCError) -> bool:
    return err.status == RPCStatusCode.NOT_FOUND or "completed" in err.message


async def _current_details(handle: Any) -> str | None:
    try:
        meta = await handle.query("__temporal_workflow_metadata", rpc_timeout=QUERY_TIMEOUT)
        if isinstance(meta, dict):  # decoded as plain JSON: the proto's field names
            return str(meta.get("currentDetails") or meta.get("current_details") or "") or None
        return str(getattr(meta, "current_details", "")) or None
    except Exception:
        return None


async def _failure(handle: Any, status: WorkflowExecutionStatus | None) -> OperationError:
    try:
        await handle.result()
    except WorkflowFailureError as err:
        cause: BaseException | None = err.cause
        while cause is not None:
            if isinstance(cause, ApplicationError) and cause.type:
                return OperationError(type=cause.type, detail=cause.message)
            nxt = getattr(cause, "cause", None)
            if nxt is None and isinstance(cause, FailureError):
                return OperationError(type="workflow-failed", detail=cause.message)
            cause = nxt
        return OperationError(type="workflow-failed", detail=str(err))
    name = status.name.lower() if status else "unknown"
    return OperationError(type=f"workflow-{name}", detail=f"the workflow ended as {name}")


def _public(summary: str | None) -> PublicText | None:
    """Summaries name ids and amounts only: stored in plaintext for every Web UI user, on every start path."""
    return PublicText(summary) if summary else None
