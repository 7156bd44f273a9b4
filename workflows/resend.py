"""Resend: re-deliver an order's existing valid tickets to its contact email.

Creates nothing and changes no status; the delivery activity appends the
`tickets-resent` history event in the same transaction that logs the send.

The plan (which tickets, or a refusal) is a read of our own store that takes
milliseconds, so it runs as a local activity: the first workflow task plans and
schedules the delivery in one completion, one server round trip fewer before
the email leaves. Re-running a read on a retried workflow task is harmless.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import DeliverTickets, OrderRef
    from activities.delivery import DeliveryActivities
    from activities.orders import OrderActivities
    from workflows import options
    from workflows.contracts import ResendRequest, ResendResult
    from workflows.failures import refusals_surface
    from workflows.search_attributes import EVENT_ID, ORDER_ID


PLAN_LOCALLY = "resend-plan-local"


@workflow.defn(name="ResendOrder")
class ResendOrderWorkflow:
    @workflow.run
    async def run(self, req: ResendRequest) -> ResendResult:
        workflow.upsert_search_attributes([ORDER_ID.value_set(req.order_code)])
        ref = OrderRef(order_code=req.order_code, actor=req.actor)
        if workflow.patched(PLAN_LOCALLY):
            planning = workflow.execute_local_activity_method(
                OrderActivities.plan_resend,
                ref,
                start_to_close_timeout=options.STORE_TIMEOUT,
                retry_policy=options.STORE_RETRY,
            )
        else:
            planning = workflow.execute_activity_method(
                OrderActivities.plan_resend,
                ref,
                start_to_close_timeout=options.STORE_TIMEOUT,
                retry_policy=options.STORE_RETRY,
            )
        plan = await refusals_surface(planning)
        workflow.upsert_search_attributes([EVENT_ID.value_set(plan.event_id)])
        workflow.set_current_details(f"Delivering {len(plan.ticket_ids)} ticket(s) by email")
        outcome = await refusals_surface(
            workflow.execute_activity_method(
                DeliveryActivities.deliver_tickets,
                DeliverTickets(
                    order_code=req.order_code,
                    ticket_ids=plan.ticket_ids,
                    operation_id=workflow.info().workflow_id,
                    actor=req.actor,
                ),
                task_queue=options.sibling_queue(workflow.info().task_queue, "email"),
                start_to_close_timeout=options.EMAIL_TIMEOUT,
                schedule_to_close_timeout=options.EMAIL_SCHEDULE_TO_CLOSE,
                retry_policy=options.EMAIL_RETRY,
            )
        )
        workflow.set_current_details("")
        return ResendResult(
            order_code=req.order_code,
            ticket_count=outcome.ticket_count,
            message_id=outcome.message_id,
            delivery=outcome.status,
        )
