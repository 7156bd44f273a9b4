"""Send payment receipt (seeds 002, 004): mail the order's receipt PDF to its contact.

One email activity: it checks the same policy as the action list, renders the PDF and sends
through the delivery log, so a retry never mails it twice.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.contracts import ReceiptEmail
    from activities.order_emails import OrderEmailActivities
    from workflows import options
    from workflows.contracts import SendReceiptRequest, SendReceiptResult
    from workflows.failures import refusals_surface
    from workflows.search_attributes import ORDER_ID


@workflow.defn(name="SendReceipt")
class SendReceiptWorkflow:
    @workflow.run
    async def run(self, req: SendReceiptRequest) -> SendReceiptResult:
        workflow.upsert_search_attributes([ORDER_ID.value_set(req.order_code)])
        workflow.set_current_details("Emailing the payment receipt")
        outcome = await refusals_surface(
            workflow.execute_activity_method(
                OrderEmailActivities.send_payment_receipt,
                ReceiptEmail(order_code=req.order_code, operation_id=workflow.info().workflow_id, actor=req.actor),
                task_queue=options.sibling_queue(workflow.info().task_queue, "email"),
                start_to_close_timeout=options.EMAIL_TIMEOUT,
                schedule_to_close_timeout=options.EMAIL_SCHEDULE_TO_CLOSE,
                retry_policy=options.EMAIL_RETRY,
            )
        )
        workflow.set_current_details("")
        return SendReceiptResult(order_code=req.order_code, message_id=outcome.message_id, delivery=outcome.status)
