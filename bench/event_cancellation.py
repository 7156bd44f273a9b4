"""event-cancellation (issue 5): refunds/s of an event cancellation against the processor's rate limit.

N paid card orders (`pm_card_visa`, so each refund succeeds at once) of one event on the
Stripe stand-in, whose rate limit is then set to the product's `refunds_per_second` (25/s
by default, Stripe test mode's limit): overshooting gives 429s. In the same run:

1. product: `POST /events/{id}/cancel {"refund": {"mode": "full"}, "notify": ...}`. The clock
   runs from the POST to the close of the `EventCancellation` workflow. The refund phase
   is timed at the processor: every `POST /v1/refunds` the stand-in logged is timestamped
   (its log is sampled every 10 ms), and the refund rate is (refunds - 1) / (last - first).
2. baseline: M other orders refunded with the Stripe SDK straight from this process,
   evenly paced at the same limit by one `Pacer` and 8 concurrent callers (retrying a 429
   with the same idempotency key): what the stand-in and the limit allow with no product.

Nothing is asserted, but the books are printed: refunds at the processor (count and
total) against the ledger's `refunded` rows, payment intents refunded twice, orders left
without a refund, and the 429s the product received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from temporalio.client import Client

from activities.pacing import Pacer
from bench.bulk_seed import bench_event, build_orders, insert_event_row, insert_orders
from bench.report import Result
from bench.scale import RssSampler, wait_pollers, worker_process
from bench.stack import Cpu, attach_card_payments, product, store_url, temporal_server
from devtools.stripe_server.client import stripe_client
from devtools.stripe_server.server import StripeServer
from runtime.codec import data_converter
from runtime.settings import AuthSettings, BlobConfig, BulkConfig
from tests.codec_keys import TEST_CODEC
from tests.harness import running
from ticketing.models import Order
from ticketing.store.engine import Store
from ticketing.store.migrate import upgrade
from ticketing.store.tables import orders as orders_table
from ticketing.store.tables import refunds as refunds_table

NAME = "event-cancellation"
TARGET = 0.9
REFUNDS_PATH = "/v1/refunds"
LAYOUTS = ("in-process", "worker-process")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("event-cancellation")
    group.add_argument("--cancel-orders", type=int, default=500, help="card orders in the event (default 500)")
    group.add_argument(
        "--cancel-rate", type=float, default=25.0,
        help="refunds_per_second, and the stand-in's rate limit (default 25, Stripe test mode's)",
    )  # fmt: skip
    group.add_argument("--cancel-batch", type=int, default=100, help="bulk batch_size (default 100)")
    group.add_argument("--cancel-window", type=int, default=4, help="bulk window (default 4)")
    group.add_argument(
        "--cancel-notify", action="store_true", help="email every buyer first, as by default in the product (off here)"
    )
    group.add_argument(
        "--cancel-baseline", type=int, default=250, help="refunds the raw SDK baseline makes (default 250)"
    )
    group.add_argument(
        "--cancel-worker-processes", type=int, default=1,
        help="worker processes in the worker-process layout (default 1); the CPU and RSS figures are the first's",
    )  # fmt: skip
    group.add_argument(
        "--cancel-layouts", default=",".join(LAYOUTS),
        help="where the workers run, one cancellation each: in-process (with the API and the Stripe stand-in, as "
             "the other benchmarks), worker-process (`python -m workers.main`) (default: both)",
    )  # fmt: skip


class _RefundClock:
    """Timestamps every `POST /v1/refunds` the Stripe stand-in logs, by sampling its request log."""

    def __init__(self, stripe: StripeServer) -> None:
        self.log = stripe.state.request_log
        self.seen = len(self.log)
        self.times: list[tuple[float, int]] = []  # (monotonic time seen, HTTP status)

    def sample(self) -> None:
        now = time.perf_counter()
        end = len(self.log)
        for entry in self.log[self.seen : end]:
            if entry.method == "POST" and entry.path == REFUNDS_PATH:
                self.times.append((now, entry.status))
        self.seen = end

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[_RefundClock]:
        async def loop() -> None:
            while True:
                self.sample()
                await asyncio.sleep(0.01)

        task = asyncio.create_task(loop())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.sample()

    def summary(self) -> dict[str, Any]:
        ok = [t for t, status in self.times if status == 200]
        statuses = Counter(status for _, status in self.times)
        span = ok[-1] - ok[0] if len(ok) > 1 else float("nan")
        return {
            "posts": len(self.times),
            "statuses": dict(statuses),
            "succeeded_posts": len(ok),
            "rate_limited": statuses.get(429, 0),
            "span_seconds": span,
            "rate": (len(ok) - 1) / span if len(ok) > 1 else float("nan"),
            "first": ok[0] if ok else float("nan"),
            "last": ok[-1] if ok else float("nan"),
        }


@dataclass
class _Env:
    """What a run needs from either layout."""

    store: Store
    stripe: StripeServer
    http: httpx.AsyncClient
    client: Client  # decodes the product's payloads
    worker_pid: int | None = None

    async def post(self, path: str, key: str, body: Any) -> dict[str, str]:
        resp = await self.http.post(path, json=body, headers={"Idempotency-Key": key}, timeout=120)
        if resp.status_code != 202:
            raise RuntimeError(f"POST {path} answered {resp.status_code}: {resp.text}")
        accepted: dict[str, str] = resp.json()
        return accepted

    async def get(self, path: str) -> dict[str, Any]:
        resp = await self.http.get(path, timeout=120)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {path} answered {resp.status_code}: {resp.text}")
        body: dict[str, Any] = resp.json()
        return body

    async def wait(self, workflow_id: str, timeout: float) -> float:
        """Wait for the workflow (following continue-as-new) to close; its close time (monotonic)."""
        with contextlib.suppress(Exception):  # a failure shows in GET /bulk
            await asyncio.wait_for(self.client.get_workflow_handle(workflow_id).result(), timeout)
        return time.perf_counter()


@contextlib.asynccontextmanager
async def _layout(
    kind: str, plain: Client, workdir: Path, overrides: dict[str, Any], worker_processes: int = 1
) -> AsyncIterator[_Env]:
    if kind == "in-process":
        async with product(plain, workdir, with_stripe=True, settings_overrides=overrides) as stack:
            assert stack.stripe is not None
            yield _Env(stack.store, stack.stripe, stack.http, stack.client)
        return
    # The worker process encrypts payloads (it always runs with a codec): the API uses the same keys.
    client = Client(plain.service_client, namespace=plain.namespace, data_converter=data_converter(TEST_CODEC))
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as resources:
        url = await resources.enter_async_context(store_url(workdir))
        await upgrade(url)
        store = Store(url)
        resources.push_async_callback(store.dispose)
        stripe = StripeServer()
        await stripe.start()
        resources.push_async_callback(stripe.stop)
        prefix = f"c{os.getpid()}-"
        h = await resources.enter_async_context(
            running(client, store, workdir, prefix, stripe=stripe, with_workers=False, settings_overrides=overrides)
        )
        procs = [
            await resources.enter_async_context(worker_process(h, workdir / f"worker-{i}.log"))
            for i in range(worker_processes)
        ]
        for proc in procs:
            await wait_pollers(client, prefix, proc, activity_queues=("email", "payments"))
        yield _Env(store, stripe, h.http, client, procs[0].pid)


async def _seed(env: _Env, count: int) -> tuple[str, list[Order]]:
    event, ga = bench_event()
    made = build_orders(event, ga, 0, count, tickets=1)
    paid = await attach_card_payments(env.stripe, made)
    await insert_event_row(env.store, event, ga)
    await insert_orders(env.store, paid)
    return event.id, paid


async def _baseline(stripe: StripeServer, orders: list[Order], rate: float) -> tuple[float, int, int]:
    """Full refunds of `orders` with the SDK, paced at `rate`: (seconds, refunds made, 429s received)."""
    sdk = stripe_client(stripe.base_url, stripe.config.api_key)
    pacer = Pacer(rate)
    queue: asyncio.Queue[Order] = asyncio.Queue()
    for order in orders:
        queue.put_nowait(order)
    made = 0
    limited = 0

    async def caller() -> None:
        nonlocal made, limited
        while not queue.empty():
            order = queue.get_nowait()
            for attempt in range(8):
                await pacer.wait()
                try:
                    await sdk.v1.refunds.create_async(
                        params={"payment_intent": order.payment.reference or "", "amount": order.payment.amount.amount},
                        options={"idempotency_key": f"bench-baseline-{order.code}"},
                    )
                    made += 1
                    break
                except Exception as err:  # a 429: back off as the product does
                    if getattr(err, "http_status", None) != 429:
                        raise
                    limited += 1
                    pacer.back_off(min(8.0, 0.5 * 2**attempt))

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(8)))
    return time.perf_counter() - started, made, limited


async def _books(env: _Env, event_id: str, intents: set[str]) -> dict[str, Any]:
    """The processor's refunds for this event's payment intents against the ledger's rows for its orders."""
    at_processor = [r for r in env.stripe.refunds() if r["payment_intent"] in intents]
    per_intent = Counter(r["payment_intent"] for r in at_processor)
    async with env.store.transaction() as conn:
        rows = (
            await conn.execute(
                sa.select(refunds_table.c.order_code, refunds_table.c.amount, refunds_table.c.status)
                .join(orders_table, orders_table.c.code == refunds_table.c.order_code)
                .where(orders_table.c.event_id == event_id)
            )
        ).all()
        order_count = (
            await conn.execute(sa.select(sa.func.count()).where(orders_table.c.event_id == event_id))
        ).scalar_one()
    refunded = [r for r in rows if r.status == "refunded"]
    per_order = Counter(r.order_code for r in rows)
    return {
        "processor_refunds": len(at_processor),
        "processor_total": sum(r["amount"] for r in at_processor if r["status"] in ("succeeded", "pending")),
        "processor_statuses": dict(Counter(r["status"] for r in at_processor)),
        "intents_refunded_twice": sum(1 for n in per_intent.values() if n > 1),
        "intents_never_refunded": len(intents - set(per_intent)),
        "ledger_refunds": len(rows),
        "ledger_refunded": len(refunded),
        "ledger_total": sum(r.amount for r in refunded),
        "ledger_statuses": dict(Counter(r.status for r in rows)),
        "orders_with_two_ledger_refunds": sum(1 for n in per_order.values() if n > 1),
        "orders_without_refund": order_count - len(per_order),
    }


async def _one_layout(
    kind: str, plain: Client, workdir: Path, args: argparse.Namespace, overrides: dict[str, Any], baseline: int
) -> dict[str, Any]:
    n = max(1, args.cancel_orders)
    rate = args.cancel_rate
    timeout = max(300.0, 4 * n / rate)
    async with _layout(kind, plain, workdir / kind, overrides, args.cancel_worker_processes) as env:
        seeding = time.perf_counter()
        warm_event, _ = await _seed(env, 4)
        event_id, orders = await _seed(env, n)
        base_orders = (await _seed(env, baseline))[1] if baseline > 0 else []
        seed_s = time.perf_counter() - seeding
        env.stripe.set_rate_limit(rate)
        body = {"reason": "the show was called off", "refund": {"mode": "full"}, "notify": args.cancel_notify}

        # Warm-up: the workers' first polls, the payment adapter's connection.
        accepted = await env.post(f"/events/{warm_event}/cancel", "bench-warm", body)
        await env.wait(accepted["operation_id"], timeout)
        await asyncio.sleep(1.5)  # let the token bucket refill before the timed run

        clock = _RefundClock(env.stripe)
        worker = RssSampler(env.worker_pid) if env.worker_pid else None
        worker_cpu = worker.cpu() if worker else 0.0
        cpu = Cpu.now()
        async with clock.running():
            started = time.perf_counter()
            accepted = await env.post(f"/events/{event_id}/cancel", "bench-run", body)
            flow_s = await env.wait(accepted["operation_id"], timeout) - started
        flow_cpu = Cpu.now().since(cpu)
        worker_cpu = worker.cpu() - worker_cpu if worker else 0.0
        state = await env.get(f"/bulk/{accepted['bulk_id']}")
        books = await _books(env, event_id, {o.payment.reference or "" for o in orders})

        base: dict[str, Any] = {}
        if base_orders:
            await asyncio.sleep(1.5)
            base_s, base_made, base_limited = await _baseline(env.stripe, base_orders, rate)
            base = {"seconds": base_s, "refunds": base_made, "rate_limited": base_limited, "orders": len(base_orders)}
    return {"layout": kind, "seed_seconds": seed_s, "product_seconds": flow_s, "product_cpu": flow_cpu,
            "worker_cpu": worker_cpu if worker else None, "status": state["status"], "counts": state["counts"],
            "refunded": int(state["counts"].get("refunded", 0)), "timeline": clock.summary(), "books": books,
            "baseline": base}  # fmt: skip


def _report(result: Result, r: dict[str, Any], n: int, rate: float) -> None:
    tag = f"[{r['layout']}]"
    timeline, books, refunded, flow_s = r["timeline"], r["books"], r["refunded"], r["product_seconds"]
    result.add(f"{tag} refunds at the processor, refund phase", timeline["rate"], "refunds/s",
               note=f"{timeline['succeeded_posts']} in {timeline['span_seconds']:.2f}s, first to last")  # fmt: skip
    result.add(f"{tag} API -> workflow closed", refunded / flow_s, "refunds/s",
               note=f"{refunded}/{n} refunded in {flow_s:.2f}s; {r['status']}")  # fmt: skip
    result.ratio(f"{tag} refund phase / limit", timeline["rate"] / rate, target=TARGET)
    result.ratio(f"{tag} end to end / limit", refunded / flow_s / rate)
    result.add(f"{tag} 429s the product received", timeline["rate_limited"], "responses",
               note=f"of {timeline['posts']} POST /v1/refunds")  # fmt: skip
    per = 1000 / max(1, refunded)
    used: Cpu = r["product_cpu"]
    split = f"this process {per * used.python:.1f} + children {per * used.server:.1f}"
    if r["worker_cpu"] is not None:
        split += f" (the worker process {per * r['worker_cpu']:.1f}, the Temporal server the rest)"
    else:
        split += " (the Temporal server); this process runs the workers, the API and the Stripe stand-in"
    result.add(f"{tag} CPU per refund", per * used.total, "ms", note=split)
    result.add(f"{tag} processor: refunds (count)", books["processor_refunds"], "refunds",
               note=f"ledger: {books['ledger_refunded']} refunded of {books['ledger_refunds']} rows")  # fmt: skip
    result.add(f"{tag} processor: refund total", books["processor_total"] / 100, "EUR",
               note=f"ledger: {books['ledger_total'] / 100:.2f} EUR")  # fmt: skip
    result.add(f"{tag} intents refunded twice at the processor", books["intents_refunded_twice"], "intents",
               note=f"orders with two ledger refunds: {books['orders_with_two_ledger_refunds']}")  # fmt: skip
    result.add(f"{tag} orders without a refund (processor)", books["intents_never_refunded"], "orders",
               note=f"ledger: {books['orders_without_refund']}")  # fmt: skip
    if books["processor_total"] != books["ledger_total"] or books["processor_refunds"] != books["ledger_refunded"]:
        result.notes.append(f"{tag} the processor and the ledger DISAGREE: {books}")
    if refunded < n:
        result.notes.append(f"{tag} not every order ended refunded: {r['counts']}")


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    n = max(1, args.cancel_orders)
    rate = args.cancel_rate
    layouts = [k.strip() for k in str(args.cancel_layouts).split(",") if k.strip()]
    unknown = [k for k in layouts if k not in LAYOUTS]
    if unknown:
        raise ValueError(f"unknown layout(s) {unknown}; choose from {LAYOUTS}")
    params = {"orders": n, "refunds_per_second": rate, "stand_in_rate_limit": rate, "batch_size": args.cancel_batch,
              "window": args.cancel_window, "notify": args.cancel_notify, "layouts": ",".join(layouts),
              "worker_processes": args.cancel_worker_processes, "temporal_db": args.temporal_db}  # fmt: skip
    result = Result(NAME, params)
    overrides = {
        "blobs": BlobConfig(root=str(workdir / "blobs")),
        "bulk": BulkConfig(batch_size=args.cancel_batch, window=args.cancel_window, refunds_per_second=rate,
                           emails_per_second=1000.0),
        "auth": AuthSettings(rate_limit_per_minute=None),
    }  # fmt: skip
    outcomes: list[dict[str, Any]] = []
    async with temporal_server(workdir, in_memory=args.temporal_db == "memory") as plain:
        for i, kind in enumerate(layouts):
            baseline = max(0, args.cancel_baseline) if i == 0 else 0
            outcomes.append(await _one_layout(kind, plain, workdir, args, overrides, baseline))

    result.add("limit: refunds_per_second = the stand-in's rate limit", rate, "refunds/s")
    base = outcomes[0]["baseline"] if outcomes else {}
    base_rate = float("nan")
    if base:
        base_rate = (base["refunds"] - 1) / base["seconds"] if base["refunds"] > 1 else float("nan")
        note = f"{base['refunds']}/{base['orders']} in {base['seconds']:.2f}s, {base['rate_limited']} 429s"
        result.add("baseline: SDK refunds paced at the limit", base_rate, "refunds/s", note=note)
        result.ratio("baseline / limit", base_rate / rate)
    for r in outcomes:
        _report(result, r, n, rate)
        if base:
            result.ratio(f"[{r['layout']}] refund phase / baseline", r["timeline"]["rate"] / base_rate)
    result.details = {"layouts": outcomes}
    return result
