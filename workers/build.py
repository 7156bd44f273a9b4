"""Which workflows and activities run on which task queue, and how every worker drains and is versioned.

Payments and email each have their own queue so that their rate limits are
task-queue limits the server enforces across every worker process; rendering ticket
PDFs ahead of delivery has its own (`render`) because it is CPU-bound.

Worker Versioning (`worker.versioning`): each process polls as version
`<deployment_name>.<build_id>` of a Worker Deployment, and every workflow has a versioning
behaviour, chosen in `VERSIONING` below:
- AUTO_UPGRADE: Refund (waits up to 10 business days), BulkDelivery and EventCancellation
  (hours, paused for days, continue-as-new), ImportOrders (the same engine), TransferTicket (waits
  days for the recipient), Reservation (waits weeks for a payment), ReturnRequest (waits for
  finance, then its refund).
  They move to the current version at their next
  workflow task, so any change to their command sequence goes behind `workflow.patched`.
- PINNED: ResendOrder, SendReceipt, CancelOrder, ReissueAndResend, RescheduleOrder,
  OpenPersonalisation (seconds to minutes). They finish on the version they started on; no
  patching needed, and the old version drains within minutes of a rollout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import timedelta
from importlib.metadata import version
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.bulk_common import BulkActivities
from activities.bulk_delivery import BulkDeliveryActivities
from activities.cancellation import CancellationActivities, CancellationEmailActivities, VoidActivities
from activities.delivery import DeliveryActivities
from activities.deps import Deps
from activities.event_cancellation import EventCancellationActivities
from activities.event_transfers import EventTransferActivities
from activities.importing import ImportActivities, ImportDeliveryActivities
from activities.order_emails import OrderEmailActivities
from activities.orders import OrderActivities
from activities.payments import PaymentActivities
from activities.personalisation import PersonalisationActivities
from activities.prerender import PrerenderActivities
from activities.reconciliation import ReconciliationActivities
from activities.reconciliation_report import ReconciliationReportActivities
from activities.refunds import RefundActivities
from activities.reissue import ReissueActivities
from activities.reservations import ReservationActivities, ReservationEmailActivities
from activities.returns import ReturnActivities, ReturnEmailActivities
from activities.transfers import TransferActivities, TransferEmailActivities
from runtime.settings import Settings
from workflows.bulk_delivery import BulkDeliveryWorkflow
from workflows.cancel import CancelOrderWorkflow
from workflows.event_cancellation import EventCancellationWorkflow
from workflows.importing import ImportOrdersWorkflow
from workflows.options import queue_names
from workflows.personalisation import OpenPersonalisationWorkflow
from workflows.receipt import SendReceiptWorkflow
from workflows.reconcile import ReconcileWorkflow
from workflows.refund import RefundWorkflow
from workflows.reissue import ReissueAndResendWorkflow, RescheduleWorkflow
from workflows.resend import ResendOrderWorkflow
from workflows.reservation import ReservationWorkflow
from workflows.returns import ReturnWorkflow
from workflows.transfer import TransferTicketWorkflow

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
# at the first Worker(), which took ~25 s here. Unversioned workers use it as a label only.
BUILD_ID = f"ticketops-{version('ticketops')}"

# Every task queue a worker can serve (deploy/ has one worker Deployment per entry; tests/deploy checks it).
QUEUES: tuple[str, ...] = queue_names("")

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
    TransferTicketWorkflow,
    ImportOrdersWorkflow,
    ReservationWorkflow,
    ReturnWorkflow,
    ReconcileWorkflow,
)

# The versioning behaviour of each workflow (see the module docstring). It is not in `@workflow.defn`
# because the SDK sends a declared behaviour with every workflow task and the server refuses it from
# an unversioned worker, while versioning is a setting here (development and tests run unversioned).
VERSIONING: dict[type, VersioningBehavior] = {
    RefundWorkflow: VersioningBehavior.AUTO_UPGRADE,
    BulkDeliveryWorkflow: VersioningBehavior.AUTO_UPGRADE,
    EventCancellationWorkflow: VersioningBehavior.AUTO_UPGRADE,
    TransferTicketWorkflow: VersioningBehavior.AUTO_UPGRADE,  # waits days for the recipient
    ImportOrdersWorkflow: VersioningBehavior.AUTO_UPGRADE,  # the bulk engine: hours, paused, continue-as-new
    ReservationWorkflow: VersioningBehavior.AUTO_UPGRADE,  # waits days or weeks for the payment
    ReturnWorkflow: VersioningBehavior.AUTO_UPGRADE,  # waits for finance, then for its refund
    # Missing on main when `flows` merged it (a versioned worker refused to start): continue-as-new, like bulk runs.
    ReconcileWorkflow: VersioningBehavior.AUTO_UPGRADE,
    ResendOrderWorkflow: VersioningBehavior.PINNED,
    SendReceiptWorkflow: VersioningBehavior.PINNED,
    CancelOrderWorkflow: VersioningBehavior.PINNED,
    ReissueAndResendWorkflow: VersioningBehavior.PINNED,
    RescheduleWorkflow: VersioningBehavior.PINNED,
    OpenPersonalisationWorkflow: VersioningBehavior.PINNED,
}


def declare_versioning_behaviours() -> None:
    """Give every workflow definition its behaviour from `VERSIONING`, as `@workflow.defn(versioning_behavior=)`
    would. For processes whose workers are versioned only: the change is process-wide."""
    for cls, behaviour in VERSIONING.items():
        defn = workflow._Definition.must_from_class(cls)
        if defn.versioning_behavior == behaviour:
            continue
        declared = dataclasses.replace(defn, versioning_behavior=behaviour)
        setattr(cls, "__temporal_workflow_definition", declared)
        setattr(declared.run_fn, "__temporal_workflow_definition", declared)


def order_activities(deps: Deps) -> list[Callable[..., Any]]:
    orders = OrderActivities(deps)
    refunds = RefundActivities(deps)
    personalisation = PersonalisationActivities(deps)
    cancellation = CancellationActivities(deps)
    reissue = ReissueActivities(deps)
    transfers = TransferActivities(deps)
    reservations = ReservationActivities(deps)
    returns = ReturnActivities(deps)
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
        transfers.open_transfer,
        transfers.accept_transfer,
        transfers.close_transfer,
        ImportActivities(deps).import_batch,
        reservations.record_deadline,
        reservations.expire,
        reservations.pay,
        returns.open_return,
        returns.decline_return,
        returns.approve_return,
        returns.settle_return,
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


def reconciliation_report_activities(deps: Deps) -> list[Callable[..., Any]]:
    """The run's report (orders queue: store and blobs); finance's email goes on the email queue."""
    return [ReconciliationReportActivities(deps).write_reconciliation_report]


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
        TransferEmailActivities(deps).send_transfer_offer,
        ImportDeliveryActivities(deps).deliver_import_batch,
        ReservationEmailActivities(deps).send_payment_reminder,
        ReturnEmailActivities(deps).send_return_declined,
        BulkDeliveryActivities(deps).deliver_bulk_batch,
        EventCancellationActivities(deps).notify_cancellation_batch,
        ReconciliationReportActivities(deps).send_reconciliation_email,
    ]


def render_activities(deps: Deps) -> list[Callable[..., Any]]:
    """CPU-bound: ticket PDFs rendered ahead of delivery (in `render_processes` processes, or a thread)."""
    return [PrerenderActivities(deps).prerender_ticket_pdfs]


def worker_options(settings: Settings) -> dict[str, Any]:
    """What every Worker shares: the drain on shutdown and the version it polls as."""
    options: dict[str, Any] = {
        "graceful_shutdown_timeout": timedelta(seconds=settings.worker.graceful_shutdown_seconds),
    }
    if settings.worker.versioning:
        declare_versioning_behaviours()
        options["deployment_config"] = WorkerDeploymentConfig(
            version=WorkerDeploymentVersion(
                deployment_name=settings.worker.deployment_name, build_id=settings.worker.build_id or BUILD_ID
            ),
            use_worker_versioning=True,
        )
    else:
        options["build_id"] = settings.worker.build_id or BUILD_ID
    return options


def build_workers(
    client: Client, deps: Deps, *, prefix: str = "", queues: Sequence[str] = QUEUES
) -> list[Worker]:
    """One Worker per queue kind; `queues` lets a process (or a test) serve only some of them."""
    temporal = deps.settings.temporal
    shared = worker_options(deps.settings)
    orders_queue, payments_queue, email_queue, render_queue = queue_names(prefix)
    made: dict[str, Callable[[], Worker]] = {
        "orders": lambda: Worker(
            client,
            **shared,
            task_queue=orders_queue,
            workflows=list(WORKFLOWS),
            workflow_runner=SANDBOX,
            activities=[
                *order_activities(deps),
                EventTransferActivities(deps, client).close_event_transfers,
                *reconciliation_activities(deps, client),
                *reconciliation_report_activities(deps),
            ],
            max_concurrent_activities=50,
        ),
        "email": lambda: Worker(
            client,
            **shared,
            task_queue=email_queue,
            activities=email_activities(deps),
            max_concurrent_activities=32,
            max_task_queue_activities_per_second=temporal.email_rate_per_second,
        ),
        "payments": lambda: Worker(
            client,
            **shared,
            task_queue=payments_queue,
            activities=payment_activities(deps),
            max_concurrent_activities=32,
            max_task_queue_activities_per_second=temporal.payments_rate_per_second,
        ),
        # A few batches at once: each spreads its tickets over the rendering processes, and one
        # batch's reads and writes overlap another's rendering.
        "render": lambda: Worker(
            client,
            **shared,
            task_queue=render_queue,
            activities=render_activities(deps),
            max_concurrent_activities=4,
        ),
    }
    unknown = set(queues) - set(made)
    if unknown:
        raise ValueError(f"unknown task queues {sorted(unknown)}; known: {sorted(made)}")
    return [made[name]() for name in queues]
