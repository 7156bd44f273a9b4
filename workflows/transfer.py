"""TransferTicket: offer a ticket to a recipient until a deadline; accept, cancel or expire.

Workflow id `transfer/{order}/{ticket}/{key}` is also the transfer's id in the store, where
the recipient's name and email stay (the payloads carry ids only). The deadline is a durable
timer: when it fires with no decision, the ticket is valid again for its holder. Accepting
and cancelling are updates, so the link or the agent learns at once whether it worked; the
first decision wins and the validators refuse the rest with `transfer-closed`.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        TRANSFER_CANCEL_UPDATE,
        DeliverTickets,
        TransferOfferEmail,
        TransferState,
        TransferStep,
    )
    from activities.delivery import DeliveryActivities
    from activities.transfers import TransferActivities, TransferEmailActivities
    from workflows import options
    from workflows.contracts import AcceptTransfer, CancelTransfer, TransferInput, TransferResult
    from workflows.failures import refusals_surface
    from workflows.search_attributes import EVENT_ID, ORDER_ID


@workflow.defn(name="TransferTicket")
class TransferTicketWorkflow:
    def __init__(self) -> None:
        self._state: TransferState | None = None
        self._decision: str | None = None  # accept, cancel or expire, once one has started
        self._settled = False

    async def _store(self, method: Any, step: TransferStep) -> TransferState:
        state: TransferState = await refusals_surface(
            workflow.execute_activity_method(
                method,
                step,
                start_to_close_timeout=options.STORE_TIMEOUT,
                retry_policy=options.STORE_RETRY,
            )
        )
        return state

    @workflow.run
    async def run(self, req: TransferInput) -> TransferResult:
        transfer_id = workflow.info().workflow_id
        workflow.upsert_search_attributes([ORDER_ID.value_set(req.order_code)])
        self._state = await self._store(
            TransferActivities.open_transfer,
            TransferStep(transfer_id=transfer_id, actor=req.actor, acceptance_days=req.acceptance_days),
        )
        workflow.upsert_search_attributes([EVENT_ID.value_set(self._state.event_id)])
        if self._state.status != "offered":  # closed before this run opened it (an event cancellation found none)
            self._settled = True
            await workflow.wait_condition(workflow.all_handlers_finished)
            return TransferResult(transfer_id=transfer_id, order_code=self._state.order_code,
                                  ticket_id=self._state.ticket_id, status=self._state.status)
        expires_at = self._state.expires_at
        assert expires_at is not None
        workflow.set_current_details(f"Offered until {expires_at.isoformat()}")
        offer = workflow.start_activity_method(
            TransferEmailActivities.send_transfer_offer,
            TransferOfferEmail(transfer_id=transfer_id, operation_id=transfer_id, expires_at=expires_at),
            task_queue=options.sibling_queue(workflow.info().task_queue, "email"),
            start_to_close_timeout=options.EMAIL_TIMEOUT,
            schedule_to_close_timeout=options.EMAIL_SCHEDULE_TO_CLOSE,
            retry_policy=options.EMAIL_RETRY,
        )
        while not self._settled:
            remaining = expires_at - workflow.now()
            if remaining <= timedelta(0):
                break
            try:
                await workflow.wait_condition(lambda: self._decision is not None, timeout=remaining)
            except TimeoutError:
                break
            # A decision is running; it settles, or fails and the offer stands again.
            await workflow.wait_condition(lambda: self._settled or self._decision is None)
        if not self._settled:
            self._decision = "expire"
            self._state = await self._store(
                TransferActivities.close_transfer,
                TransferStep(transfer_id=transfer_id, actor="ticketops", status="expired", reason="expired"),
            )
            self._settled = True
        if not offer.done():
            offer.cancel()  # the offer is moot; an email outage must not hold the transfer open
        with contextlib.suppress(ActivityError):  # rejected, or cancelled just above: no bearing on the outcome
            await offer
        with_delivery = None
        state = self._state
        if state.status == "accepted" and state.new_order_code and state.new_ticket_id:
            with_delivery = await self._deliver(state, req.actor)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.set_current_details("")
        return TransferResult(
            transfer_id=transfer_id,
            order_code=state.order_code,
            ticket_id=state.ticket_id,
            status=state.status,
            new_order_code=state.new_order_code,
            new_ticket_id=state.new_ticket_id,
            delivery=with_delivery,
        )

    async def _deliver(self, state: TransferState, actor: str) -> str:
        workflow.set_current_details("Delivering the new ticket to the recipient")
        try:
            delivered = await workflow.execute_activity_method(
                DeliveryActivities.deliver_tickets,
                DeliverTickets(
                    order_code=state.new_order_code or "",
                    ticket_ids=[state.new_ticket_id or ""],
                    operation_id=workflow.info().workflow_id,
                    actor=actor,
                    history_type="tickets-sent",
                ),
                task_queue=options.sibling_queue(workflow.info().task_queue, "email"),
                start_to_close_timeout=options.EMAIL_TIMEOUT,
                schedule_to_close_timeout=options.EMAIL_SCHEDULE_TO_CLOSE,
                retry_policy=options.EMAIL_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            return f"failed:{cause.type}" if isinstance(cause, ApplicationError) and cause.type else "failed"
        return delivered.status

    def _refuse_unless_open(self) -> None:
        if self._state is None:
            return  # still opening: the handler waits for it
        if self._settled or self._decision is not None:
            raise ApplicationError(f"the transfer is {self._state.status if self._settled else 'being decided'}",
                                   type="transfer-closed")
        if self._state.expires_at is not None and workflow.now() >= self._state.expires_at:
            raise ApplicationError("the transfer has expired", type="transfer-expired")

    async def _decide(self, decision: str, method: Any, step: TransferStep) -> TransferState:
        await workflow.wait_condition(lambda: self._state is not None)
        self._refuse_unless_open()
        self._decision = decision
        try:
            self._state = await self._store(method, step)
        except ApplicationError:
            self._decision = None
            raise
        self._settled = True
        return self._state

    @workflow.update
    async def accept(self, req: AcceptTransfer) -> TransferState:
        return await self._decide(
            "accept",
            TransferActivities.accept_transfer,
            TransferStep(transfer_id=workflow.info().workflow_id, actor=f"transfer-recipient:{req.via}"),
        )

    @accept.validator
    def _check_accept(self, req: AcceptTransfer) -> None:
        self._refuse_unless_open()

    @workflow.update(name=TRANSFER_CANCEL_UPDATE)  # also sent by an event cancellation, by this name
    async def cancel(self, req: CancelTransfer) -> TransferState:
        return await self._decide(
            "cancel",
            TransferActivities.close_transfer,
            TransferStep(
                transfer_id=workflow.info().workflow_id, actor=req.actor, status="cancelled", reason=req.reason
            ),
        )

    @cancel.validator
    def _check_cancel(self, req: CancelTransfer) -> None:
        self._refuse_unless_open()

    @workflow.query
    def state(self) -> TransferState | None:
        return self._state
