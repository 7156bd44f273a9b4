"""bulk-delivery (issue 5): emails/s of a bulk delivery of PDF tickets, against raw aiosmtplib sends.

For each batch setting (`--bulk-delivery-settings`, `BATCHxWINDOW`), one event with N paid
orders of 1 ticket and N distinct buyers, and in the same run on the same SMTP sink:

1. product: `POST /events/{id}/deliveries {"template": "tickets"}`; the clock runs from
   the POST to the close of the `BulkDelivery` workflow (its last run, after continue-as-new),
   so it includes materialising the recipients and writing the CSV report. Then
   `GET /bulk/{id}` must say `completed` with N `sent`; only sent emails count.
2. baseline: the very bytes the sink received in phase 1 (same MIME, same PDF), sent again
   with plain aiosmtplib over as many connections as the product's SMTP pool.

`emails_per_second` is set to 100000, far above what either side reaches, so the pacing
never waits and the figure is the machine's, not the limit's. Also reported: the sending
span (first to last message at the sink), CPU per email split between this process and the
Temporal server, and the CPU spent in `render_ticket_pdf` inside the activity (the
renderer that `activities.bulk_delivery` calls is wrapped by a timer for the run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.testing import ActivityEnvironment

import activities.bulk_delivery as bulk_delivery_module
import email_providers.smtp as smtp_module
from activities.bulk_common import BulkActivities
from activities.bulk_delivery import BulkDeliveryActivities
from activities.contracts import BulkBatch, FinishBulk, PrepareBulk
from bench.bulk_seed import seed_event
from bench.report import Result
from bench.smtp_raw import RawMessage, send_raw
from bench.stack import Cpu, Stack, product, temporal_server
from runtime.settings import BlobConfig, BulkConfig
from ticketing.bulk import BulkKind, Selection

NAME = "bulk-delivery"
TARGET = 0.7
UNPACED = 100_000.0  # emails/s: far above anything measured here, so the pacer never waits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bulk-delivery")
    group.add_argument(
        "--bulk-delivery-orders", type=int, default=400, help="orders (= recipients) per bulk delivery (default 400)"
    )
    group.add_argument(
        "--bulk-delivery-settings",
        default="100x4,50x8,25x16",
        help="comma-separated BATCHxWINDOW settings to try, one bulk delivery each (default 100x4,50x8,25x16)",
    )
    group.add_argument(
        "--bulk-delivery-connections", type=int, default=0,
        help="raw SMTP connections (default: the product's SMTP pool size)",
    )  # fmt: skip


def parse_settings(text: str) -> list[tuple[int, int]]:
    pairs = []
    for part in text.split(","):
        batch, _, window = part.strip().lower().partition("x")
        pairs.append((max(1, int(batch)), max(1, int(window or 1))))
    return pairs


class _CpuTimer:
    """Wraps a function the product calls by module global; sums the calling thread's CPU seconds in it."""

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner = inner
        self.cpu = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return self.inner(*args, **kwargs)
        finally:
            used = time.thread_time() - started
            with self._lock:
                self.cpu += used
                self.calls += 1


# (module, global): the PDF renderer the bulk activity calls (in a thread), and the MIME
# builder the SMTP provider calls (on the event loop).
_TIMED = {"render_ticket_pdf": (bulk_delivery_module, "render_ticket_pdf"), "build_mime": (smtp_module, "build_mime")}


@contextlib.contextmanager
def _timers() -> Iterator[dict[str, _CpuTimer]]:
    """Timers on whichever of `_TIMED` the product still calls; restored afterwards."""
    patched: dict[str, tuple[Any, str, Any]] = {}
    timers: dict[str, _CpuTimer] = {}
    for label, (module, attr) in _TIMED.items():
        original = getattr(module, attr, None)
        if original is None:
            continue
        timers[label] = _CpuTimer(original)
        patched[label] = (module, attr, original)
        setattr(module, attr, timers[label])
    try:
        yield timers
    finally:
        for module, attr, original in patched.values():
            setattr(module, attr, original)


def _arrival(path: Path) -> float:
    """The sink names each .eml after its arrival time (`20261122T012345123456Z-7.eml`)."""
    stamp = path.name.split("-", 1)[0]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC).timestamp()


async def run_delivery(
    stack: Stack, event_id: str, body: dict[str, Any], key: str, timeout: float
) -> tuple[float, dict[str, Any], str]:
    """POST a bulk delivery, wait for its workflow (all runs) to close; (seconds, final GET /bulk, workflow id)."""
    started = time.perf_counter()
    accepted = await stack.post(f"/events/{event_id}/deliveries", key=key, json=body)
    closed = await stack.wait_workflows([accepted["operation_id"]], timeout)
    elapsed = closed[accepted["operation_id"]] - started
    state = await stack.get(f"/bulk/{accepted['bulk_id']}")
    return elapsed, state, accepted["operation_id"]


async def run_activities_only(stack: Stack, event_id: str, batch: int, window: int, tag: str) -> tuple[float, int]:
    """The bulk activities' bodies, called in this process as the engine would (waves of `window`
    batches of `batch` items), with no Temporal and no API: (seconds, emails sent)."""
    bulk = BulkActivities(stack.deps)
    delivery = BulkDeliveryActivities(stack.deps)
    bulk_id = f"bk_bench_{tag}"
    started = time.perf_counter()
    found = await ActivityEnvironment().run(
        bulk.prepare_bulk,
        PrepareBulk(
            bulk_id=bulk_id, workflow_id=f"bench-activities/{tag}", kind=BulkKind.DELIVERY.value, event_id=event_id,
            selection=Selection(event_id=event_id).model_dump(mode="json"),
            params={"template": "tickets", "subject": None, "body": None, "actor": "bench"}, actor="bench",
        ),
    )  # fmt: skip
    sent = 0
    cursor = found.first
    while cursor <= found.last:
        ranges: list[tuple[int, int]] = []
        while cursor <= found.last and len(ranges) < window:
            ranges.append((cursor, min(cursor + batch - 1, found.last)))
            cursor = ranges[-1][1] + 1
        share = UNPACED / len(ranges)
        done = await asyncio.gather(
            *(
                ActivityEnvironment().run(
                    delivery.deliver_bulk_batch, BulkBatch(bulk_id=bulk_id, first=a, last=b, rate=share)
                )
                for a, b in ranges
            )
        )
        sent += sum(d.counts.get("sent", 0) for d in done)
    await ActivityEnvironment().run(bulk.finish_bulk, FinishBulk(bulk_id=bulk_id, status="completed"))
    return time.perf_counter() - started, sent


async def _wait_sink(stack: Stack, count: int) -> None:
    with contextlib.suppress(TimeoutError):  # a shortfall shows in the counts
        await stack.sink.wait_for_messages(count, timeout=30)


def _per_email(used: Cpu, count: int) -> str:
    per = 1000 / max(1, count)
    return f"python {per * used.python:.1f} + temporal server {per * used.server:.1f}"


async def _one_setting(
    stack: Stack, batch: int, window: int, flow_event: str, inline_event: str, n: int, connections: int, timeout: float
) -> dict[str, Any]:
    stack.settings.bulk = BulkConfig(
        batch_size=batch, window=window, emails_per_second=UNPACED,
        continue_after_batches=stack.settings.bulk.continue_after_batches,
    )  # fmt: skip
    tag = f"{batch}x{window}"
    with _timers() as timers:
        cpu = Cpu.now()
        flow_s, state, _ = await run_delivery(stack, flow_event, {"template": "tickets"}, f"bench-{tag}", timeout)
        flow_cpu = Cpu.now().since(cpu)
    timed = {label: {"cpu": t.cpu, "calls": t.calls} for label, t in timers.items()}
    await _wait_sink(stack, n)
    deliveries = list(stack.sink.deliveries)
    captured = [RawMessage(d.mail_from, d.rcpt_tos, d.path.read_bytes()) for d in deliveries]
    arrivals = sorted(_arrival(d.path) for d in deliveries)
    stack.sink.clear()

    cpu = Cpu.now()
    raw_s = await send_raw("127.0.0.1", stack.sink.port, captured, connections)
    raw_cpu = Cpu.now().since(cpu)
    await _wait_sink(stack, len(captured))
    raw_received = len(stack.sink.deliveries)
    stack.sink.clear()

    cpu = Cpu.now()
    inline_s, inline_sent = await run_activities_only(stack, inline_event, batch, window, tag)
    inline_cpu = Cpu.now().since(cpu)
    await _wait_sink(stack, inline_sent)
    stack.sink.clear()
    return {
        "batch_size": batch, "window": window, "status": state["status"], "counts": state["counts"],
        "sent": int(state["counts"].get("sent", 0)), "product_seconds": flow_s, "product_cpu": flow_cpu,
        "sending_span_seconds": arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan"),
        "timed_cpu": timed, "raw_sent": len(captured), "raw_received": raw_received, "raw_seconds": raw_s,
        "raw_cpu": raw_cpu, "activities_seconds": inline_s, "activities_sent": inline_sent,
        "activities_cpu": inline_cpu, "message_bytes": sum(len(m.data) for m in captured) / max(1, len(captured)),
    }  # fmt: skip


def _report(result: Result, r: dict[str, Any], n: int) -> None:
    tag = f"{r['batch_size']}x{r['window']}"
    rate = r["sent"] / r["product_seconds"]
    raw_rate = r["raw_sent"] / r["raw_seconds"] if r["raw_sent"] else float("nan")
    inline_rate = r["activities_sent"] / r["activities_seconds"]
    span = r["sending_span_seconds"]
    result.add(f"[{tag}] product: API -> workflow closed", rate, "emails/s",
               note=f"{r['sent']}/{n} sent in {r['product_seconds']:.2f}s; {r['status']}")  # fmt: skip
    result.add(f"[{tag}] product: sending span at the sink", (r["raw_sent"] - 1) / span, "emails/s",
               note=f"first to last message: {span:.2f}s")  # fmt: skip
    result.add(f"[{tag}] activities only, no Temporal/API", inline_rate, "emails/s",
               note=f"{r['activities_sent']}/{n} sent in {r['activities_seconds']:.2f}s")  # fmt: skip
    result.add(f"[{tag}] baseline: raw aiosmtplib, same bytes", raw_rate, "emails/s",
               note=f"{r['raw_received']}/{r['raw_sent']} received in {r['raw_seconds']:.2f}s")  # fmt: skip
    result.ratio(f"[{tag}] product / raw SMTP", rate / raw_rate, target=TARGET)
    result.ratio(f"[{tag}] product / activities only", rate / inline_rate)
    per = 1000 / max(1, r["sent"])
    used: Cpu = r["product_cpu"]
    parts = ", ".join(f"{label} {per * t['cpu']:.1f}" for label, t in r["timed_cpu"].items())
    result.add(f"[{tag}] CPU per email: product", per * used.total, "ms",
               note=f"{_per_email(used, r['sent'])}; inside: {parts}")  # fmt: skip
    inline: Cpu = r["activities_cpu"]
    result.add(f"[{tag}] CPU per email: activities only", 1000 * inline.total / max(1, r["activities_sent"]), "ms",
               note=_per_email(inline, r["activities_sent"]))  # fmt: skip
    raw_used: Cpu = r["raw_cpu"]
    result.add(f"[{tag}] CPU per email: raw SMTP", 1000 * raw_used.total / max(1, r["raw_sent"]), "ms")


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    n = max(1, args.bulk_delivery_orders)
    settings = parse_settings(args.bulk_delivery_settings)
    result = Result(
        NAME,
        {"orders": n, "tickets_per_order": 1, "settings": args.bulk_delivery_settings,
         "emails_per_second": UNPACED, "temporal_db": args.temporal_db},
    )  # fmt: skip
    timeout = max(180.0, n * 1.0)
    rounds: list[dict[str, Any]] = []
    overrides = {"blobs": BlobConfig(root=str(workdir / "blobs")), "bulk": BulkConfig(emails_per_second=UNPACED)}
    async with (
        temporal_server(workdir, in_memory=args.temporal_db == "memory") as client,
        product(client, workdir / "stack", settings_overrides=overrides) as stack,
    ):
        pool_size = stack.settings.email.smtp.pool_size
        connections = args.bulk_delivery_connections or pool_size
        warm_event, _ = await seed_event(stack.store, 8, tag="warm")
        events = [((await seed_event(stack.store, n))[0].id, (await seed_event(stack.store, n))[0].id)
                  for _ in settings]  # fmt: skip

        # Warm-up: imports, fonts, the workers' first polls, the SMTP pool's connections.
        await run_delivery(stack, warm_event.id, {"template": "tickets"}, "bench-warm", timeout)
        await _wait_sink(stack, 8)
        stack.sink.clear()

        for (batch, window), (flow_event, inline_event) in zip(settings, events, strict=True):
            rounds.append(await _one_setting(stack, batch, window, flow_event, inline_event, n, connections, timeout))

    result.params |= {"raw_connections": connections, "smtp_pool_size": pool_size}
    for r in rounds:
        _report(result, r, n)
    best = max(rounds, key=lambda r: r["sent"] / r["product_seconds"])
    best_tag = f"{best['batch_size']}x{best['window']}"
    best_ratio = (best["sent"] / best["product_seconds"]) / (best["raw_sent"] / best["raw_seconds"])
    result.ratio(f"best setting ({best_tag}): product / raw SMTP", best_ratio, target=TARGET)
    mean_size = sum(r["message_bytes"] for r in rounds) / len(rounds)
    result.add("message size (mean)", mean_size / 1024, "KiB", note="1 PDF each")
    if any(r["sent"] < n or r["activities_sent"] < n for r in rounds):
        result.notes.append("not every recipient was sent to: the rates count sent emails only")
    result.details = {"rounds": rounds, "best": best_tag}
    return result
