"""Open personalisation (seed 001): reset every personalised ticket, mail the booker a new link.

Two activities: the reset on the `orders` queue (idempotent per workflow id, and it starts a
new round, which supersedes every older link), then the email on the `email` queue, which
signs the link for that round. The token never enters the workflow's history.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import OpenPersonalisationRound, PersonalisationLinkEmail
    from activities.order_emails import OrderEmailActivities
    from activities.personalisation import PersonalisationActivities
    from workflows import options
    from workflows.contracts import OpenPersonalisationRequest, OpenPersonalisationResult
    from workflows.failures import refusals_surface
    from workflows.search_attributes import EVENT_ID, ORDER_ID


@workflow.defn(name="OpenPersonalisation")
class OpenPersonalisationWorkflow:
    @workflow.run
    async def run(self, req: OpenPersonalisationRequest) -> OpenPersonalisationResult:
        workflow.upsert_search_attributes([ORDER_ID.value_set(req.order_code)])
        operation_id = workflow.info().workflow_id
        opened = await refusals_surface(
            workflow.execute_activity_method(
                PersonalisationActivities.open_personalisation_round,
                OpenPersonalisationRound(order_code=req.order_code, operation_id=operation_id, actor=req.actor),
                start_to_close_timeout=options.STORE_TIMEOUT,
                retry_policy=options.STORE_RETRY,
            )
        )
        workflow.upsert_search_attributes([EVENT_ID.value_set(opened.event_id)])
        workflow.set_current_details(f"Emailing the personalisation link (round {opened.round})")
        outcome = await refusals_surface(
            workflow.execute_activity_method(
                OrderEmailActivities.send_personalisation_link,
                PersonalisationLinkEmail(
                    order_code=req.order_code,
                    operation_id=operation_id,
                    actor=req.actor,
                    round=opened.round,
                    expires_at=opened.expires_at,
                ),
                task_queue=options.sibling_queue(workflow.info().task_queue, "email"),
                start_to_close_timeout=options.EMAIL_TIMEOUT,
                schedule_to_close_timeout=options.EMAIL_SCHEDULE_TO_CLOSE,
                retry_policy=options.EMAIL_RETRY,
            )
        )
        workflow.set_current_details("")
        return OpenPersonalisationResult(
            order_code=req.order_code,
            round=opened.round,
            ticket_count=opened.ticket_count,
            message_id=outcome.message_id,
            delivery=outcome.status,
        )
