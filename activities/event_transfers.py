"""Before an event (or time-slot) cancellation refunds its orders, it closes their open transfers.

A ticket on offer holds its order back (`ticket-in-transfer`), so the cancellation would report the
order failed until someone cancelled the transfer by hand. When this runs, the event or slot is
marked cancelled (prepare_bulk), so no transfer of these orders opens or is accepted any more; each
one still open is cancelled through its own workflow's cancel update, by its id, with the reason
`event-cancelled`. The transfer's rule that the first decision wins settles a race with the
recipient: accepted first (their order was chosen with the others, after the mark), or cancelled
here. The update is sent from an activity because a workflow can only signal another one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.contracts import (
    TRANSFER_CANCEL_UPDATE,
    CancelTransfer,
    CloseEventTransfers,
    EventTransfersClosed,
    TransferState,
)
from activities.deps import Deps
from activities.errors import domain_errors
from activities.transfers import close_in_store
from ticketing.states import TransferStatus
from ticketing.store.bulk import load_bulk
from ticketing.store.transfers import load_transfer, open_transfers_of_bulk
from ticketing.transfers import EVENT_CANCELLED, TicketTransfer

log = structlog.get_logger(__name__)
IN_FLIGHT = 8  # updates at once: each is a workflow task and a store transaction on the orders queue
HEARTBEAT_SECONDS = 5.0
OPEN = (TransferStatus.REQUESTED, TransferStatus.OFFERED)


class TransferBeingDecided(Exception):
    """The transfer's workflow is deciding (the recipient accepting, an agent cancelling): ask again."""


class EventTransferActivities:
    def __init__(self, deps: Deps, client: Client | None = None) -> None:
        self.deps = deps
        self.client = client

    @activity.defn(name="close_event_transfers")
    @domain_errors
    async def close_event_transfers(self, req: CloseEventTransfers) -> EventTransfersClosed:
        """One page of the operation's open transfers closed; a retry reads the page again (closed ones
        have left it). A transfer still being decided fails the attempt after the others are done."""
        if self.client is None:
            raise ApplicationError("no Temporal client to reach the transfers", type="no-client", non_retryable=True)
        async with self.deps.store.transaction() as conn:
            bulk = await load_bulk(conn, req.bulk_id)
            page = await open_transfers_of_bulk(conn, req.bulk_id, after=req.after, limit=req.limit)
        actor = str(bulk.params.get("actor", "ticketops"))
        ended: list[TransferStatus] = []
        deciding: list[str] = []
        failure: list[Exception] = []
        todo = iter(page)

        async def work() -> None:
            for transfer in todo:
                if failure:
                    return
                try:
                    ended.append(await self._close(transfer, actor))
                except TransferBeingDecided:
                    deciding.append(transfer.id)
                except Exception as err:  # the others finish the transfer they hold; then the attempt fails
                    failure.append(err)
                    return

        ticker = asyncio.ensure_future(_heartbeat(lambda: len(ended)))
        try:
            await asyncio.gather(*(work() for _ in range(min(IN_FLIGHT, len(page)))))
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if failure:
            raise failure[0]
        if deciding:
            raise ApplicationError(f"{len(deciding)} transfer(s) being decided; asking again", type="transfer-deciding")
        accepted = sum(1 for s in ended if s is TransferStatus.ACCEPTED)
        log.info("event_cancellation.transfers_closed", bulk_id=req.bulk_id, closed=len(ended) - accepted,
                 accepted=accepted)
        return EventTransfersClosed(
            closed=len(ended) - accepted,
            accepted=accepted,
            next=page[-1].id if len(page) == req.limit else None,
        )

    async def _close(self, transfer: TicketTransfer, actor: str) -> TransferStatus:
        """The transfer's own cancel update, then the store's word on how it ended."""
        assert self.client is not None
        handle: WorkflowHandle[object, object] = self.client.get_workflow_handle(transfer.id)
        try:
            await handle.execute_update(
                TRANSFER_CANCEL_UPDATE, CancelTransfer(actor=actor, reason=EVENT_CANCELLED), result_type=TransferState
            )
        except WorkflowUpdateFailedError as err:  # refused (decided already, or deciding), or its run ended
            cause = err.cause
            log.info("event_cancellation.transfer_update_refused", transfer_id=transfer.id,
                     type=getattr(cause, "type", None))
        except RPCError as err:
            if not _gone(err):
                raise
        async with self.deps.store.transaction() as conn:
            status = (await load_transfer(conn, transfer.id)).status
        if status not in OPEN:
            return status
        if await _running(handle):
            raise TransferBeingDecided(transfer.id)
        # No run holds it (terminated, or never started): nothing else will ever close it.
        log.warning("event_cancellation.orphan_transfer_closed", transfer_id=transfer.id)
        closed = await close_in_store(self.deps.store, transfer.id, TransferStatus.CANCELLED, actor=actor,
                                      reason=EVENT_CANCELLED)
        return TransferStatus(closed.status)


def _gone(err: RPCError) -> bool:
    """No run to update: never started, or completed (its last word is in the store)."""
    return err.status == RPCStatusCode.NOT_FOUND or "completed" in err.message


async def _running(handle: WorkflowHandle[object, object]) -> bool:
    try:
        return (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise


async def _heartbeat(done: Callable[[], int]) -> None:
    """An update can wait on the transfer's worker; the attempt stays alive while it is working
    (a beat at least three times per heartbeat timeout, whatever the operation set it to)."""
    timeout = activity.info().heartbeat_timeout
    every = min(HEARTBEAT_SECONDS, timeout.total_seconds() / 3) if timeout else HEARTBEAT_SECONDS
    while True:
        activity.heartbeat(done())
        await asyncio.sleep(max(0.1, every))
