"""reissue (issue 4): reissue-and-resend of a 10-ticket order, time split by step.

R orders of T tickets are reissued one at a time through `POST /orders/{code}/reissue`.
For each, the workflow's own history gives every activity's queue wait (scheduled ->
started) and run time (started -> completed); the PDF rendering inside the delivery is
timed where it happens (the renderer the activity calls is wrapped). What is left of the
API-to-close time is orchestration: the API, workflow tasks and the server. Medians over
the runs after a warm-up; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from pathlib import Path

from temporalio.api.enums.v1 import EventType

from bench.pdf import _timed_renderer
from bench.report import Result
from bench.stack import make_orders, product, seed, temporal_server

NAME = "reissue"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reissue")
    group.add_argument("--reissue-runs", type=int, default=6, help="reissues measured, after one warm-up (default 6)")
    group.add_argument("--reissue-tickets", type=int, default=10, help="tickets in each order (default 10)")


async def _steps(client: object, workflow_id: str) -> dict[str, tuple[float, float]]:
    """activity type -> (queue wait s, run s), summed over attempts, from the workflow's history."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()  # type: ignore[attr-defined]
    scheduled: dict[int, tuple[str, float]] = {}
    started: dict[int, float] = {}
    steps: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = (event.activity_task_scheduled_event_attributes.activity_type.name, at)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            sched = event.activity_task_started_event_attributes.scheduled_event_id
            name, when = scheduled[sched]
            steps[name][0] += at - when
            started[sched] = at
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            sched = event.activity_task_completed_event_attributes.scheduled_event_id
            name, _ = scheduled[sched]
            steps[name][1] += at - started[sched]
    return {k: (v[0], v[1]) for k, v in steps.items()}


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    runs = max(1, args.reissue_runs)
    tickets = max(1, args.reissue_tickets)
    result = Result(NAME, {"runs": runs, "tickets_per_order": tickets, "temporal_db": args.temporal_db})
    totals: list[float] = []
    per_step: dict[str, list[tuple[float, float]]] = defaultdict(list)
    renders: list[float] = []
    async with temporal_server(workdir, in_memory=args.temporal_db == "memory") as client, product(
        client, workdir / "stack"
    ) as stack:
        event, ticket_type, orders = make_orders(runs + 1, tickets, tag="reissue")
        await seed(stack.store, event, ticket_type, orders)
        with _timed_renderer() as timer:
            for i, order in enumerate(orders):
                begun = time.perf_counter()
                body = await stack.post(f"/orders/{order.code}/reissue", key=f"bench-reissue-{i}")
                await stack.wait_workflows([body["operation_id"]], timeout=120)
                elapsed = time.perf_counter() - begun
                view = await stack.get(f"/operations/{body['operation_id']}")
                if view["status"] != "completed":
                    raise RuntimeError(f"reissue of {order.code} ended {view['status']}: {view.get('error')}")
                rendered = timer.take()[0] if timer else 0.0
                if i == 0:
                    continue  # warm-up
                totals.append(elapsed)
                renders.append(rendered)
                for name, split in (await _steps(client, body["operation_id"])).items():
                    per_step[name].append(split)
    total = statistics.median(totals)
    result.add(f"reissue-and-resend of {tickets} tickets, API -> closed (median)", 1000 * total, "ms")
    accounted = 0.0
    for name, splits in sorted(per_step.items()):
        wait = statistics.median(s[0] for s in splits)
        work = statistics.median(s[1] for s in splits)
        accounted += wait + work
        result.add(f"  {name}: running", 1000 * work, "ms", note=f"queue wait {1000 * wait:.0f} ms")
    render = statistics.median(renders)
    result.add(f"  of which rendering {tickets} ticket PDFs", 1000 * render, "ms")
    result.add("  orchestration (API, workflow tasks, server)", 1000 * max(0.0, total - accounted), "ms")
    result.ratio("share of rendering in the whole workflow", render / total)
    result.details = {"totals": totals, "steps": {k: v for k, v in per_step.items()}, "renders": renders}
    return result
