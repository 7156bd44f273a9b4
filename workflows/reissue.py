"""ReissueAndResend and RescheduleOrder: new barcodes first, then delivery of the new PDFs.

The store step commits the new tickets (old ones `invalid:reissued`) and the
`tickets-reissued` / `tickets-rescheduled` history event before any email is
tried, so an SMTP outage never loses or doubles them: delivery retries on
EMAIL_RETRY (a day), and the delivery log sends the message once. A delivery
that finally fails (rejected, no contact email) leaves the reissue in place and
is reported in the result and, when rejected, as `delivery-failed` in history.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import DeliverTickets, ReissueOutcome, ReissueTickets
    from activities.delivery import DeliveryActivities
    from activities.reissue import ReissueActivities
    from workflows import options
    from workflows.contracts import ReissueInput, ReissueResult, RescheduleInput
    from workflows.failures import refusals_surface
    from workflows.search_attributes import EVENT_ID, ORDER_ID


async def _deliver(outcome: ReissueOutcome, actor: str, history_type: str) -> ReissueResult:
    new_ids = list(outcome.replaced.values())
    workflow.set_current_details(f"Delivering {len(new_ids)} new ticket(s) by email")
    result = ReissueResult(
        order_code=outcome.order_code, replaced=outcome.replaced, time_slot_id=outcome.time_slot_id, delivery="sent"
    )
    try:
        delivered = await workflow.execute_activity_method(
            DeliveryActivities.deliver_tickets,
            DeliverTickets(
                order_code=outcome.order_code,
                ticket_ids=new_ids,
                operation_id=workflow.info().workflow_id,
                actor=actor,
                history_type=history_type,
            ),
            task_queue=options.sibling_queue(workflow.info().task_queue, "email"),
            start_to_close_timeout=options.EMAIL_TIMEOUT,
            schedule_to_close_timeout=options.EMAIL_SCHEDULE_TO_CLOSE,
            retry_policy=options.EMAIL_RETRY,
        )
    except ActivityError as err:
        cause = err.cause
        result.delivery = f"failed:{cause.type}" if isinstance(cause, ApplicationError) and cause.type else "failed"
    else:
        result.delivery, result.message_id = delivered.status, delivered.message_id
    workflow.set_current_details("")
    return result


async def _store(method: Any, req: ReissueTickets) -> ReissueOutcome:
    workflow.upsert_search_attributes([ORDER_ID.value_set(req.order_code)])
    outcome: ReissueOutcome = await refusals_surface(
        workflow.execute_activity_method(
            method, req, start_to_close_timeout=options.STORE_TIMEOUT, retry_policy=options.STORE_RETRY
        )
    )
    workflow.upsert_search_attributes([EVENT_ID.value_set(outcome.event_id)])
    return outcome


@workflow.defn(name="ReissueAndResend")
class ReissueAndResendWorkflow:
    @workflow.run
    async def run(self, req: ReissueInput) -> ReissueResult:
        outcome = await _store(
            ReissueActivities.reissue_tickets,
            ReissueTickets(
                order_code=req.order_code,
                operation_id=workflow.info().workflow_id,
                actor=req.actor,
                ticket_ids=req.ticket_ids,
            ),
        )
        return await _deliver(outcome, req.actor, "tickets-reissued-sent")


@workflow.defn(name="RescheduleOrder")
class RescheduleWorkflow:
    @workflow.run
    async def run(self, req: RescheduleInput) -> ReissueResult:
        outcome = await _store(
            ReissueActivities.reschedule_tickets,
            ReissueTickets(
                order_code=req.order_code,
                operation_id=workflow.info().workflow_id,
                actor=req.actor,
                ticket_ids=req.ticket_ids,
                time_slot_id=req.time_slot_id,
            ),
        )
        return await _deliver(outcome, req.actor, "tickets-rescheduled-sent")
