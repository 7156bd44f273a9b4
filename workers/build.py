"""Which workflows and activities run on which task queue.

Payments and email each have their own queue so that their rate limits are
task-queue limits the server enforces across every worker process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.delivery import DeliveryActivities
from activities.deps import Deps
from activities.orders import OrderActivities
from workflows.options import queue_names
from workflows.resend import ResendOrderWorkflow

WORKFLOWS: Sequence[type] = (ResendOrderWorkflow,)


def order_activities(deps: Deps) -> list[Callable[..., Any]]:
    orders = OrderActivities(deps)
    return [orders.plan_resend]


def payment_activities(deps: Deps) -> list[Callable[..., Any]]:
    return []


def email_activities(deps: Deps) -> list[Callable[..., Any]]:
    delivery = DeliveryActivities(deps)
    return [delivery.deliver_tickets]


def build_workers(client: Client, deps: Deps, *, prefix: str = "") -> list[Worker]:
    orders_q, payments_q, email_q = queue_names(prefix)
    temporal = deps.settings.temporal
    executor = ThreadPoolExecutor(max_workers=4)
    workers = [
        Worker(
            client,
            task_queue=orders_q,
            workflows=list(WORKFLOWS),
            activities=order_activities(deps),
            activity_executor=executor,
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
    pay = payment_activities(deps)
    if pay:
        workers.append(
            Worker(
                client,
                task_queue=payments_q,
                activities=pay,
                max_concurrent_activities=32,
                max_task_queue_activities_per_second=temporal.payments_rate_per_second,
            )
        )
    return workers
