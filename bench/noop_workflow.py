"""The refund benchmark's baseline: a workflow that runs a chain of no-op activities.

Each step names the task queue it runs on, so the chain can mirror the queues a real
refund uses (orders, payments, orders, email). Kept free of heavy imports: the
workflow sandbox re-imports this module for every run, as it does the product's.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
async def noop(step: str) -> str:
    return step


@workflow.defn(name="BenchNoopChain")
class NoopChainWorkflow:
    @workflow.run
    async def run(self, queues: list[str]) -> int:
        for queue in queues:
            await workflow.execute_activity(
                noop, queue, task_queue=queue, start_to_close_timeout=timedelta(seconds=30)
            )
        return len(queues)
