"""resend (issue 2): orders/s through API -> ResendOrder workflow -> SMTP sink, against raw SMTP.

Phases, all in one run on the same servers and the same SMTP sink:

1. product: N orders of 2 tickets; every `POST /orders/{code}/resend` is started at once
   through the API, and the clock stops when the last workflow has closed. Every
   operation is then read back through `GET /operations/{id}` and must be `completed`
   with delivery `sent`.
2. activities: the same two activity bodies (`plan_resend`, `deliver_tickets`) called in
   this process for N other orders, without Temporal or the API (same store, PDF
   rendering, delivery log and SMTP pool). It splits the gap between orchestration and
   the work itself.
3. baseline: the very bytes the sink received in phase 1 (same MIME, same PDFs), sent
   again with plain aiosmtplib over as many connections as the product's SMTP pool,
   repeated up to `--resend-raw-messages` so that the phase is long enough to time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from pathlib import Path

from activities.contracts import DeliverTickets, OrderRef
from activities.delivery import DeliveryActivities
from activities.orders import OrderActivities
from bench.refund import _baseline_phase, _baseline_workers
from bench.report import Result, percentile
from bench.smtp_raw import RawMessage, send_raw
from bench.stack import Cpu, Stack, make_orders, product, seed, temporal_server
from devtools.smtp_sink import arrived_at

NAME = "resend"
TICKETS = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("resend")
    group.add_argument("--resend-orders", type=int, default=40, help="orders resent concurrently (default 40)")
    group.add_argument(
        "--resend-connections", type=int, default=0, help="raw SMTP connections (default: the product's SMTP pool size)"
    )
    group.add_argument(
        "--resend-raw-messages",
        type=int,
        default=400,
        help="messages the raw baseline sends: the captured ones, repeated (default 400)",
    )
    group.add_argument(
        "--resend-serial", type=int, default=10,
        help="resends one at a time, API to the email in the sink, each beside a one-activity no-op workflow "
             "on the same server (default 10)",
    )  # fmt: skip


async def _one_resend(stack: Stack, code: str, tag: str) -> float:
    """Seconds from the API call until the email is in the sink."""
    stack.sink.clear()
    started = time.time()
    await stack.post(f"/orders/{code}/resend", key=f"bench-{tag}")
    await stack.sink.wait_for_messages(1, timeout=60)
    # The sink's own arrival time: its wait polls every 20 ms, which would add up to 20 ms here.
    return arrived_at(stack.sink.deliveries[0].path) - started


async def _product_phase(stack: Stack, codes: list[str], tag: str, timeout: float) -> tuple[float, int]:
    started = time.perf_counter()
    bodies = await asyncio.gather(
        *(stack.post(f"/orders/{code}/resend", key=f"bench-{tag}-{i}") for i, code in enumerate(codes))
    )
    ops = [b["operation_id"] for b in bodies]
    closed = await stack.wait_workflows(ops, timeout)
    elapsed = max(closed.values()) - started
    gate = asyncio.Semaphore(8)

    async def view(op: str) -> bool:
        async with gate:
            body = await stack.get(f"/operations/{op}")
        return body["status"] == "completed" and (body.get("result") or {}).get("delivery") == "sent"

    sent = sum(await asyncio.gather(*(view(op) for op in ops)))
    return elapsed, sent


async def _activities_phase(stack: Stack, codes: list[str], tag: str) -> tuple[float, int]:
    orders = OrderActivities(stack.deps)
    delivery = DeliveryActivities(stack.deps)
    gate = asyncio.Semaphore(32)  # the email worker's max_concurrent_activities

    async def one(i: int, code: str) -> bool:
        async with gate:
            plan = await orders.plan_resend(OrderRef(order_code=code, actor="bench"))
            outcome = await delivery.deliver_tickets(
                DeliverTickets(
                    order_code=code, ticket_ids=plan.ticket_ids, operation_id=f"bench-{tag}/{code}/{i}", actor="bench"
                )
            )
        return outcome.status == "sent"

    started = time.perf_counter()
    sent = sum(await asyncio.gather(*(one(i, c) for i, c in enumerate(codes))))
    return time.perf_counter() - started, sent


async def _wait_sink(stack: Stack, count: int) -> None:
    with contextlib.suppress(TimeoutError):  # a shortfall shows in the counts
        await stack.sink.wait_for_messages(count, timeout=30)


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    n = max(1, args.resend_orders)
    result = Result(NAME, {"orders": n, "tickets_per_order": TICKETS, "temporal_db": args.temporal_db})
    timeout = max(90.0, n * 1.5)
    async with temporal_server(workdir, in_memory=args.temporal_db == "memory") as client, product(
        client, workdir / "stack"
    ) as stack:
        serial = max(0, args.resend_serial)
        event, ticket_type, orders = make_orders(2 * n + 2 + serial, TICKETS)
        await seed(stack.store, event, ticket_type, orders)
        codes = [o.code for o in orders]
        warm, flow_codes, inline_codes = codes[:2], codes[2 : 2 + n], codes[2 + n : 2 + 2 * n]
        serial_codes = codes[2 + 2 * n :]

        # Warm-up: imports, fonts, connections, the workers' first polls.
        await _product_phase(stack, warm[:1], "warm", timeout)
        await _activities_phase(stack, warm[1:], "warm")
        await _wait_sink(stack, 2)
        stack.sink.clear()

        cpu = Cpu.now()
        flow_s, flow_sent = await _product_phase(stack, flow_codes, "flow", timeout)
        flow_cpu = Cpu.now().since(cpu)
        await _wait_sink(stack, n)
        captured = [
            RawMessage(d.mail_from, d.rcpt_tos, d.path.read_bytes()) for d in list(stack.sink.deliveries)
        ]
        stack.sink.clear()

        cpu = Cpu.now()
        inline_s, inline_sent = await _activities_phase(stack, inline_codes, "inline")
        inline_cpu = Cpu.now().since(cpu)
        await _wait_sink(stack, n)
        stack.sink.clear()

        connections = args.resend_connections or stack.settings.email.smtp.pool_size
        # The same messages, repeated so the phase lasts long enough to time (40 take ~0.2 s).
        repeated = captured * max(1, -(-args.resend_raw_messages // max(1, len(captured))))
        cpu = Cpu.now()
        raw_s = await send_raw("127.0.0.1", stack.sink.port, repeated, connections)
        raw_cpu = Cpu.now().since(cpu)
        await _wait_sink(stack, len(repeated))
        raw_received = len(stack.sink.deliveries)
        stack.sink.clear()

        # One at a time: latency without queueing, against a one-activity no-op workflow, alternating.
        one_resend: list[float] = []
        one_noop: list[float] = []
        one_again: list[float] = []
        one_noop_again: list[float] = []
        if serial_codes:
            base_prefix = f"n{uuid.uuid4().hex[:8]}-"
            async with _baseline_workers(client, stack, base_prefix):
                await _baseline_phase(client, base_prefix, [f"{base_prefix}orders"], 1, "resend-warm")
                for i, code in enumerate(serial_codes):
                    one_resend.append(await _one_resend(stack, code, f"s{i}"))
                    base = await _baseline_phase(client, base_prefix, [f"{base_prefix}orders"], 1, f"resend-s{i}")
                    one_noop.extend(base["to_closed"])
                # A resend in real life follows the tickets' first delivery, whose PDFs are in the render
                # cache: the same orders again, each alternating with a no-op as above.
                for i, code in enumerate(serial_codes):
                    one_again.append(await _one_resend(stack, code, f"a{i}"))
                    base = await _baseline_phase(client, base_prefix, [f"{base_prefix}orders"], 1, f"resend-a{i}")
                    one_noop_again.extend(base["to_closed"])

    sizes = [len(m.data) for m in captured]
    flow_rate = flow_sent / flow_s
    inline_rate = inline_sent / inline_s
    raw_rate = len(repeated) / raw_s if captured else float("nan")
    result.params["raw_connections"] = connections
    result.add("product: API -> workflow -> sink", flow_rate, "orders/s", note=f"{flow_sent}/{n} sent in {flow_s:.2f}s")
    inline_note = f"{inline_sent}/{n} sent in {inline_s:.2f}s"
    result.add("activities only, no Temporal/API", inline_rate, "orders/s", note=inline_note)
    raw_note = f"{raw_received}/{len(repeated)} received in {raw_s:.2f}s"
    result.add("baseline: raw aiosmtplib, same bytes", raw_rate, "msgs/s", note=raw_note)
    result.add("message size (mean)", sum(sizes) / max(1, len(sizes)) / 1024, "KiB", note=f"{TICKETS} PDFs each")
    for label, used, count in (
        ("CPU per order: product", flow_cpu, flow_sent),
        ("CPU per order: activities only", inline_cpu, inline_sent),
        ("CPU per message: raw SMTP", raw_cpu, len(repeated)),
    ):
        per = 1000 / max(1, count)
        note = f"python {per * used.python:.1f} + temporal server {per * used.server:.1f}"
        result.add(label, per * used.total, "ms", note=note)
    result.ratio("product / raw SMTP", flow_rate / raw_rate)
    result.ratio("product / activities only", flow_rate / inline_rate)
    result.ratio("activities only / raw SMTP", inline_rate / raw_rate)
    flow_per = flow_cpu.total / max(1, flow_sent)
    result.ratio("CPU per message: raw SMTP / product", raw_cpu.total / max(1, len(repeated)) / flow_per)
    result.ratio("CPU per order: activities only / product", inline_cpu.total / max(1, inline_sent) / flow_per)
    if one_resend:
        result.params["serial"] = len(one_resend)
        result.add("one at a time: API -> email in the sink, p50", 1000 * percentile(one_resend, 50), "ms")
        result.add("one at a time: API -> email in the sink, p95", 1000 * percentile(one_resend, 95), "ms")
        result.add("one at a time: no-op workflow (1 activity), p50", 1000 * percentile(one_noop, 50), "ms")
        result.ratio(
            "one at a time, p50: resend / no-op workflow", percentile(one_resend, 50) / percentile(one_noop, 50),
            note="target: at most 1.5 (every PDF rendered in the resend: orders never delivered before)",
        )  # fmt: skip
    if one_again:
        result.add("one at a time, tickets delivered before: API -> email in the sink, p50",
                   1000 * percentile(one_again, 50), "ms", note="their PDFs in the render cache")
        result.add("one at a time, tickets delivered before: no-op workflow, p50",
                   1000 * percentile(one_noop_again, 50), "ms")
        result.ratio(
            "one at a time, tickets delivered before, p50: resend / no-op workflow",
            percentile(one_again, 50) / percentile(one_noop_again, 50),
            note="target: at most 1.5",
        )  # fmt: skip
    result.details = {
        "product_cpu": flow_cpu,
        "activities_cpu": inline_cpu,
        "raw_cpu": raw_cpu,
        "product_seconds": flow_s,
        "activities_seconds": inline_s,
        "raw_seconds": raw_s,
        "product_sent": flow_sent,
        "activities_sent": inline_sent,
        "raw_sent": len(repeated),
        "raw_received": raw_received,
        "message_bytes": {"min": min(sizes, default=0), "max": max(sizes, default=0)},
    }
    if flow_sent < n or inline_sent < n or len(captured) < n:
        result.notes.append("not every order was delivered: the rates count delivered orders only")
    return result
