"""refund (issue 3): refunds/s and latency through the API, against a chain of no-op activities.

Card orders are paid with `pm_card_visa` on the Stripe stand-in, so the processor says
`succeeded` at once and a refund runs straight through. One warm-up refund is read back
from its history: the activities it scheduled (type and task queue) become the baseline,
`BenchNoopChain`, a workflow running as many no-op activities on the same queues, with the
same task-queue rate limits, on the same dev server.

Timed phases: N baseline workflows started at once with the client; then N refunds, each
previewed first (untimed) and confirmed with `POST /orders/{code}/refunds` at once. A phase
ends when its last workflow closes. Latency runs from the POST to `refunded` (the refund's
`updated_at` when the ledger moved it, read back with `GET /refunds/{id}`), and to the
workflow's close (after the receipt email).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from bench.noop_workflow import NoopChainWorkflow, noop
from bench.report import Result, percentile
from bench.stack import Cpu, Stack, attach_card_payments, make_orders, product, seed, temporal_server

NAME = "refund"
TICKETS = 2
TARGET = 0.8
BODY = {"kind": "full", "reason": "benchmark refund"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("refund")
    group.add_argument("--refund-count", type=int, default=20, help="refunds started at once per round (default 20)")
    group.add_argument(
        "--refund-rounds",
        type=int,
        default=2,
        help="rounds of baseline and product, in alternating order to cancel drifting load (default 2)",
    )
    group.add_argument(
        "--refund-serial", type=int, default=10, help="refunds one at a time, for latency without queueing (default 10)"
    )


async def _scheduled(client: Client, workflow_id: str) -> tuple[list[tuple[str, str]], int]:
    """(activity type, task queue) of each activity the workflow scheduled; and its history length."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = [
        (e.activity_task_scheduled_event_attributes.activity_type.name,
         e.activity_task_scheduled_event_attributes.task_queue.name)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]  # fmt: skip
    return scheduled, len(history.events)


@contextlib.asynccontextmanager
async def _baseline_workers(client: Client, stack: Stack, prefix: str) -> Any:
    temporal = stack.settings.temporal
    workers = [
        Worker(
            client, task_queue=f"{prefix}orders", workflows=[NoopChainWorkflow], activities=[noop],
            max_concurrent_activities=50,
        ),
        Worker(
            client, task_queue=f"{prefix}payments", activities=[noop], max_concurrent_activities=32,
            max_task_queue_activities_per_second=temporal.payments_rate_per_second,
        ),
        Worker(
            client, task_queue=f"{prefix}email", activities=[noop], max_concurrent_activities=32,
            max_task_queue_activities_per_second=temporal.email_rate_per_second,
        ),
    ]  # fmt: skip
    async with contextlib.AsyncExitStack() as exits:
        for worker in workers:
            await exits.enter_async_context(worker)
        yield


async def _baseline_phase(client: Client, prefix: str, queues: list[str], n: int, tag: str) -> dict[str, Any]:
    async def one(i: int) -> tuple[str, float]:
        called = time.perf_counter()
        handle = await client.start_workflow(
            NoopChainWorkflow.run, queues, id=f"bench-noop/{tag}/{i}", task_queue=f"{prefix}orders"
        )
        if await handle.result() != len(queues):
            raise RuntimeError(f"baseline workflow {handle.id} did not run its {len(queues)} activities")
        return handle.id, time.perf_counter() - called

    cpu = Cpu.now()
    started = time.perf_counter()
    done = await asyncio.gather(*(one(i) for i in range(n)))
    return {
        "seconds": time.perf_counter() - started,
        "cpu": Cpu.now().since(cpu),
        "ids": [d[0] for d in done],
        "to_closed": [d[1] for d in done],
    }


async def _refund_phase(stack: Stack, codes: list[str], tag: str, timeout: float) -> dict[str, Any]:
    gate = asyncio.Semaphore(8)

    async def preview(code: str) -> str:
        async with gate:
            resp = await stack.http.post(f"/orders/{code}/refunds/preview", json=BODY)
        if resp.status_code != 200:
            raise RuntimeError(f"preview of {code} answered {resp.status_code}: {resp.text}")
        return str(resp.json()["quote_hash"])

    hashes = await asyncio.gather(*(preview(c) for c in codes))
    called: dict[str, tuple[float, float]] = {}

    async def confirm(i: int, code: str, quote_hash: str) -> dict[str, Any]:
        called[code] = (time.perf_counter(), time.time())
        body = {**BODY, "quote_hash": quote_hash}
        return await stack.post(f"/orders/{code}/refunds", key=f"bench-{tag}-{i}", json=body)

    cpu = Cpu.now()
    started = time.perf_counter()
    bodies = await asyncio.gather(*(confirm(i, c, h) for i, (c, h) in enumerate(zip(codes, hashes, strict=True))))
    closed = await stack.wait_workflows([b["operation_id"] for b in bodies], timeout)
    elapsed = max(closed.values()) - started
    used = Cpu.now().since(cpu)

    refunded: list[float] = []
    completed: list[float] = []
    statuses: dict[str, int] = {}
    for code, body in zip(codes, bodies, strict=True):
        refund = await stack.get(body["refund_url"])
        statuses[refund["status"]] = statuses.get(refund["status"], 0) + 1
        at_perf, at_wall = called[code]
        completed.append(closed[body["operation_id"]] - at_perf)
        if refund["status"] == "refunded":
            at = datetime.fromisoformat(refund["updated_at"])
            at = at if at.tzinfo else at.replace(tzinfo=UTC)  # the store keeps UTC
            refunded.append(at.timestamp() - at_wall)
    return {
        "seconds": elapsed,
        "cpu": used,
        "refunded": statuses.get("refunded", 0),
        "statuses": statuses,
        "to_refunded": refunded,
        "to_closed": completed,
        "operation_ids": [b["operation_id"] for b in bodies],
    }


def _per_item(used: list[Cpu], count: int) -> Cpu:
    return Cpu(sum(c.python for c in used) / max(1, count), sum(c.server for c in used) / max(1, count))


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    n = max(1, args.refund_count)
    rounds = max(1, args.refund_rounds)
    serial = max(0, args.refund_serial)
    params = {"refunds": n, "rounds": rounds, "serial": serial, "tickets_per_order": TICKETS}
    result = Result(NAME, params | {"temporal_db": args.temporal_db})
    timeout = max(120.0, n * 3.0)
    flows: list[dict[str, Any]] = []
    bases: list[dict[str, Any]] = []
    async with temporal_server(workdir, in_memory=args.temporal_db == "memory") as client, product(
        client, workdir / "stack", with_stripe=True
    ) as stack:
        assert stack.stripe is not None
        event, ticket_type, orders = make_orders(1 + n * rounds + serial, TICKETS)
        orders = await attach_card_payments(stack.stripe, orders)
        await seed(stack.store, event, ticket_type, orders)
        codes = [o.code for o in orders]

        warm = await _refund_phase(stack, codes[:1], "warm", timeout)
        if warm["refunded"] != 1:
            raise RuntimeError(f"the warm-up refund did not end refunded: {warm['statuses']}")
        scheduled, refund_events = await _scheduled(client, warm["operation_ids"][0])
        kinds = [queue.removeprefix(stack.prefix) for _, queue in scheduled]
        base_prefix = f"n{uuid.uuid4().hex[:8]}-"
        queues = [f"{base_prefix}{kind}" for kind in kinds]

        async with _baseline_workers(client, stack, base_prefix):
            await _baseline_phase(client, base_prefix, queues, 1, "warm")
            for r in range(rounds):
                batch = codes[1 + r * n : 1 + (r + 1) * n]
                if r % 2 == 0:
                    bases.append(await _baseline_phase(client, base_prefix, queues, n, f"r{r}"))
                    flows.append(await _refund_phase(stack, batch, f"r{r}", timeout))
                else:
                    flows.append(await _refund_phase(stack, batch, f"r{r}", timeout))
                    bases.append(await _baseline_phase(client, base_prefix, queues, n, f"r{r}"))
            _, base_events = await _scheduled(client, bases[0]["ids"][0])
            alone: list[dict[str, Any]] = []
            alone_bases: list[dict[str, Any]] = []
            for i, code in enumerate(codes[1 + n * rounds :]):
                alone.append(await _refund_phase(stack, [code], f"s{i}", timeout))
                alone_bases.append(await _baseline_phase(client, base_prefix, queues, 1, f"s{i}"))

    base_s = sum(b["seconds"] for b in bases)
    flow_s = sum(f["seconds"] for f in flows)
    refunded = sum(f["refunded"] for f in flows)
    total = n * rounds
    base_rate = total / base_s
    rate = refunded / flow_s
    result.params["activities_per_refund"] = len(scheduled)
    done = f"{refunded}/{total} refunded in {flow_s:.2f}s"
    result.add("product: refunds through the API", rate, "refunds/s", note=done)
    result.add(
        f"baseline: {len(scheduled)} no-op activities", base_rate, "workflows/s", note=f"{total} in {base_s:.2f}s"
    )
    result.ratio("product / baseline", rate / base_rate, target=TARGET)
    to_refunded = [x for f in flows for x in f["to_refunded"]]
    to_closed = [x for f in flows for x in f["to_closed"]]
    base_closed = [x for b in bases for x in b["to_closed"]]
    flow_cpu = _per_item([f["cpu"] for f in flows], refunded)
    base_cpu = _per_item([b["cpu"] for b in bases], total)
    result.add(
        "CPU per refund", 1000 * flow_cpu.total, "ms",
        note=f"python {1000 * flow_cpu.python:.0f} + temporal server {1000 * flow_cpu.server:.0f}",
    )  # fmt: skip
    result.add(
        "CPU per baseline workflow", 1000 * base_cpu.total, "ms",
        note=f"python {1000 * base_cpu.python:.0f} + temporal server {1000 * base_cpu.server:.0f}",
    )  # fmt: skip
    result.ratio("CPU per workflow: baseline / product", base_cpu.total / flow_cpu.total,
                 note="what the throughput ratio tends to when CPU is the bottleneck")  # fmt: skip
    result.add("latency API -> refunded, p50", 1000 * percentile(to_refunded, 50), "ms")
    result.add("latency API -> refunded, p95", 1000 * percentile(to_refunded, 95), "ms")
    result.add("latency API -> workflow closed, p50", 1000 * percentile(to_closed, 50), "ms")
    result.add("latency API -> workflow closed, p95", 1000 * percentile(to_closed, 95), "ms")
    result.add("baseline latency start -> closed, p50", 1000 * percentile(base_closed, 50), "ms")
    result.add("baseline latency start -> closed, p95", 1000 * percentile(base_closed, 95), "ms")
    result.ratio("latency p50 to closed: product / baseline", percentile(to_closed, 50) / percentile(base_closed, 50))
    if serial:
        one_refunded = [x for f in alone for x in f["to_refunded"]]
        one_closed = [x for f in alone for x in f["to_closed"]]
        one_base = [x for b in alone_bases for x in b["to_closed"]]
        result.add("one at a time: API -> refunded, p50", 1000 * percentile(one_refunded, 50), "ms")
        result.add("one at a time: API -> refunded, p95", 1000 * percentile(one_refunded, 95), "ms")
        result.add("one at a time: API -> closed, p50", 1000 * percentile(one_closed, 50), "ms")
        result.add("one at a time: baseline start -> closed, p50", 1000 * percentile(one_base, 50), "ms")
        one_ratio = percentile(one_closed, 50) / percentile(one_base, 50)
        result.ratio("one at a time, p50 to closed: product / baseline", one_ratio)
        result.details["serial"] = {
            "latency_to_refunded_seconds": sorted(one_refunded),
            "latency_to_closed_seconds": sorted(one_closed),
            "baseline_latency_seconds": sorted(one_base),
        }
    result.add("history events: refund / baseline", refund_events, "events", note=f"baseline {base_events}")
    ran = ", ".join(f"{a}@{k}" for (a, _), k in zip(scheduled, kinds, strict=True))
    result.notes.append(f"activities a refund ran: {ran}")
    statuses: dict[str, int] = {}
    for f in flows:
        for status, count in f["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    if refunded < total:
        result.notes.append(f"not every refund ended refunded: {statuses}")
    result.details |= {
        "activities": [{"type": a, "queue": k} for (a, _), k in zip(scheduled, kinds, strict=True)],
        "refund_history_events": refund_events,
        "baseline_history_events": base_events,
        "rounds": [
            {"order": "baseline,product" if r % 2 == 0 else "product,baseline",
             "baseline_seconds": b["seconds"], "product_seconds": f["seconds"], "refunded": f["refunded"],
             "baseline_cpu": b["cpu"], "product_cpu": f["cpu"]}
            for r, (b, f) in enumerate(zip(bases, flows, strict=True))
        ],
        "statuses": statuses,
        "latency_to_refunded_seconds": sorted(to_refunded),
        "latency_to_closed_seconds": sorted(to_closed),
        "baseline_latency_seconds": sorted(base_closed),
    }  # fmt: skip
    return result
