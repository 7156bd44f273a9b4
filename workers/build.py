"""Which workflows and activities run on which task queue.

Payments and email each have their own queue so that their rate limits are
task-queue limits the server enforces across every worker process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.bulk_common import BulkActivities
from activities.bulk_delivery import BulkDeliveryActivities
from activities.cancellation import CancellationActivities, CancellationEmailActivities, VoidActivities
from activities.delivery import DeliveryActivities
from activities.deps import Deps
from activities.event_cancellation import EventCancellationActivities
from activities.order_emails import OrderEmailActivities
from activities.orders import OrderActivities
from activities.payments import PaymentActivities
from activities.personalisation import PersonalisationActivities
from activities.reconciliation import ReconciliationActivities
from activities.refunds import RefundActivities
from activities.reissue import ReissueActivities
from workflows.bulk_delivery import BulkDeliveryWorkflow
from workflows.cancel import CancelOrderWorkflow
from workflows.event_cancellation import EventCancellationWorkflow
from workflows.options import queue_names
from workflows.personalisation import OpenPersonalisationWorkflow
from workflows.receipt import SendReceiptWorkflow
from workflows.reconcile import ReconcileWorkflow
from workflows.refund import RefundWorkflow
from workflows.reissue import ReissueAndResendWorkflow, RescheduleWorkflow
from workflows.resend import ResendOrderWorkflow

# Our own packages are pure at import (class and function definitions, no global state), so the
# sandbox shares them instead of re-executing them for every workflow run, which cost a measured
# ~15% of the worker's CPU in refund bursts. The sandbox's restrictions on calls still apply.
SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "workflows", "activities", "ticketing", "runtime", "documents", "email_providers", "payment_adapters",
        "blob_storage", "pydantic", "pydantic_core", "sqlalchemy", "structlog",
    )
)

# An explicit build id: without one the SDK hashes the bytecode of every loaded module
# at the first Worker(), which took ~25 s here (workers are not versioned; it is a label).
BUILD_ID = f"ticketops-{version('ticketops')}"

WORKFLOWS: Sequence[type] = (
    ResendOrderWorkflow,
    RefundWorkflow,
    OpenPersonalisationWorkflow,
    SendReceiptWorkflow,
    CancelOrderWorkflow,
    ReissueAndResendWorkflow,
    RescheduleWorkflow,
    BulkDeliveryWorkflow,
    EventCancellationWorkflow,
    ReconcileWorkflow,
)


def order_activities(deps: Deps) -> list[Callable[..., Any]]:
    orders = OrderActivities(deps)
    refunds = RefundActivities(deps)
    personalisation = PersonalisationActivities(deps)
    cancellation = CancellationActivities(deps)
    reissue = ReissueActivities(deps)
    return [
        orders.plan_resend,
        refunds.open_refund,
        refunds.move_refund,
        refunds.settle_refund,
        refunds.get_refund_snapshot,
        cancellation.cancel_order,
        cancellation.record_cancellation_note,
        reissue.reissue_tickets,
        reissue.reschedule_tickets,
        personalisation.open_personalisation_round,
        *bulk_store_activities(deps),
    ]


def reconciliation_activities(deps: Deps, client: Client) -> list[Callable[..., Any]]:
    """On the orders queue: they read the store and (paced in the activity, with back-off on 429)
    the processor's lists, and read Temporal visibility; the workflow does every start and signal."""
    recon = ReconciliationActivities(deps, client)
    return [
        recon.begin_reconciliation,
        recon.stage_processor_page,
        recon.classify_reconciliation,
        recon.recheck_reconciliation_items,
        recon.reconciliation_heal_page,
        recon.reconciliation_mark_healed,
        recon.finish_reconciliation,
    ]


def bulk_store_activities(deps: Deps) -> list[Callable[..., Any]]:
    bulk = BulkActivities(deps)
    return [bulk.prepare_bulk, bulk.finish_bulk, bulk.set_bulk_status]


def payment_activities(deps: Deps) -> list[Callable[..., Any]]:
    payments = PaymentActivities(deps)
    return [
        payments.submit_refund,
        payments.find_refund,
        payments.fetch_refund,
        VoidActivities(deps).void_payment,
        EventCancellationActivities(deps).cancel_refund_batch,
    ]


def email_activities(deps: Deps) -> list[Callable[..., Any]]:
    delivery = DeliveryActivities(deps)
    order_emails = OrderEmailActivities(deps)
    return [
        delivery.deliver_tickets,
        delivery.send_refund_email,
        CancellationEmailActivities(deps).send_cancellation_emails,
        order_emails.send_personalisation_link,
        order_emails.send_payment_receipt,
        BulkDeliveryActivities(deps).deliver_bulk_batch,
        EventCancellationActivities(deps).notify_cancellation_batch,
    ]


def build_workers(
    client: Client, deps: Deps, *, prefix: str = "", queues: tuple[str, ...] = ("orders", "email", "payments")
) -> list[Worker]:
    """One Worker per queue kind; `queues` lets a process (or a test) serve only some of them."""
    temporal = deps.settings.temporal
    orders_queue, payments_queue, email_queue = queue_names(prefix)
    made: dict[str, Callable[[], Worker]] = {
        "orders": lambda: Worker(
            client,
            build_id=BUILD_ID,
            task_queue=orders_queue,
            workflows=list(WORKFLOWS),
            workflow_runner=SANDBOX,
            activities=[*order_activities(deps), *reconciliation_activities(deps, client)],
            max_concurrent_activities=50,
        ),
        "email": lambda: Worker(
            client,
            build_id=BUILD_ID,
            task_queue=email_queue,
            activities=email_activities(deps),
            max_concurrent_activities=32,
            max_task_queue_activities_per_second=temporal.email_rate_per_second,
        ),
        "payments": lambda: Worker(
            client,
            build_id=BUILD_ID,
            task_queue=payments_queue,
            activities=payment_activities(deps),
            max_concurrent_activities=32,
            max_task_queue_activities_per_second=temporal.payments_rate_per_second,
        ),
    }
    return [made[name]() for name in queues]
