"""Which workflows and activities run on which task queue.

Payments and email each have their own queue so that their rate limits are
task-queue limits the server enforces across every worker process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.delivery import DeliveryActivities
from activities.deps import Deps
from activities.orders import OrderActivities
from activities.payments import PaymentActivities
from activities.refunds import RefundActivities
from workflows.options import queue_names
from workflows.refund import RefundWorkflow
from workflows.resend import ResendOrderWorkflow

WORKFLOWS: Sequence[type] = (ResendOrderWorkflow, RefundWorkflow)


def order_activities(deps: Deps) -> list[Callable[..., Any]]:
    orders = OrderActivities(deps)
    refunds = RefundActivities(deps)
    return [orders.plan_resend, refunds.open_refund, refunds.move_refund, refunds.get_refund_snapshot]


def payment_activities(deps: Deps) -> list[Callable[..., Any]]:
    payments = PaymentActivities(deps)
    return [payments.submit_refund, payments.fetch_refund]


def email_activities(deps: Deps) -> list[Callable[..., Any]]:
    delivery = DeliveryActivities(deps)
    return [delivery.deliver_tickets, delivery.send_refund_email]


def build_workers(client: Client, deps: Deps, *, prefix: str = "") -> list[Worker]:
    orders_q, payments_q, email_q = queue_names(prefix)
    temporal = deps.settings.temporal
    workers = [
        Worker(
            client,
            task_queue=orders_q,
            workflows=list(WORKFLOWS),
            activities=order_activities(deps),
            max_concurrent_activities=50,
        ),
        Worker(
            client,
            task_queue=email_q,
            activities=email_activities(deps),
            max_concurrent_activities=32,
            max_task_queue_activities_per_second=temporal.email_rate_per_second,
        ),
    ]
    workers.append(
        Worker(
            client,
            task_queue=payments_q,
            activities=payment_activities(deps),
            max_concurrent_activities=32,
            max_task_queue_activities_per_second=temporal.payments_rate_per_second,
        )
    )
    return workers
