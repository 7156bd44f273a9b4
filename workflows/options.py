"""Timeouts and retry policies, named once so every workflow treats a queue alike."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

STORE_TIMEOUT = timedelta(seconds=30)
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)

EMAIL_TIMEOUT = timedelta(minutes=2)
# Email outages are waited out: a day of retries, at most every five minutes.
EMAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)
EMAIL_SCHEDULE_TO_CLOSE = timedelta(days=1)

# The processor call's own timeout is RefundTiming.payment_timeout_seconds (settings), passed in each input.
PAYMENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
)


def sibling_queue(orders_queue: str, kind: str) -> str:
    """`orders` -> `email`; `t42-orders` -> `t42-email`.

    Queues are named `{prefix}orders`, `{prefix}payments`, `{prefix}email`, `{prefix}render`, so a
    workflow finds the queue of its side effects from its own, and tests can run
    side by side with a prefix each.
    """
    if not orders_queue.endswith("orders"):
        raise ValueError(f"workflow task queue {orders_queue!r} does not end in 'orders'")
    return orders_queue[: -len("orders")] + kind


def queue_names(prefix: str = "") -> tuple[str, str, str, str]:
    """(orders, payments, email, render): the one naming scheme, used by the workers and the API.

    `render` takes the CPU-bound work (ticket PDFs rendered ahead of delivery) off the queues
    whose workers must stay responsive: workflow tasks on `orders`, paced sends on `email`."""
    return f"{prefix}orders", f"{prefix}payments", f"{prefix}email", f"{prefix}render"

PAYMENT_SCHEDULE_TO_CLOSE = timedelta(days=1)
