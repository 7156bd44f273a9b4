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
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import activities.bulk_delivery as bulk_delivery_module
from bench.bulk_seed import seed_event
from bench.report import Result
from bench.smtp_raw import RawMessage, send_raw
from bench.stack import Cpu, Stack, product, temporal_server
from documents.models import TicketDocument
from runtime.settings import BlobConfig, BulkConfig

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


class _RenderTimer:
    """Wraps the renderer the bulk activity calls; sums thread CPU seconds spent in it (thread-safe)."""

    def __init__(self, inner: Callable[[TicketDocument], bytes]) -> None:
        self.inner = inner
        self.cpu = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, doc: TicketDocument) -> bytes:
        started = time.thread_time()
        try:
            return self.inner(doc)
        finally:
            used = time.thread_time() - started
            with self._lock:
                self.cpu += used
                self.calls += 1


@contextlib.contextmanager
def _timed_renderer() -> Iterator[_RenderTimer | None]:
    original = getattr(bulk_delivery_module, "render_ticket_pdf", None)
    if original is None:
        yield None
        return
    timer = _RenderTimer(original)
    setattr(bulk_delivery_module, "render_ticket_pdf", timer)  # noqa: B010 - patching a module global on purpose
    try:
        yield timer
    finally:
        setattr(bulk_delivery_module, "render_ticket_pdf", original)  # noqa: B010


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


async def _wait_sink(stack: Stack, count: int) -> None:
    with contextlib.suppress(TimeoutError):  # a shortfall shows in the counts
        await stack.sink.wait_for_messages(count, timeout=30)


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    n = max(1, args.bulk_delivery_orders)
    settings = parse_settings(args.bulk_delivery_settings)
    result = Result(
        NAME,
        {"orders": n, "tickets_per_order": 1, "settings": args.bulk_delivery_settings,
         "emails_per_second": UNPACED, "temporal_db": args.temporal_db},
    )  # fmt: skip
    timeout = max(180.0, n * 1.0)
    body = {"template": "tickets"}
    rounds: list[dict[str, Any]] = []
    overrides = {
        "blobs": BlobConfig(root=str(workdir / "blobs")),
        "bulk": BulkConfig(emails_per_second=UNPACED),
    }
    async with temporal_server(workdir, in_memory=args.temporal_db == "memory") as client, product(
        client, workdir / "stack", settings_overrides=overrides
    ) as stack:
        pool_size = stack.settings.email.smtp.pool_size
        connections = args.bulk_delivery_connections or pool_size
        warm_event, _ = await seed_event(stack.store, 8, tag="warm")
        events = [(await seed_event(stack.store, n))[0] for _ in settings]

        # Warm-up: imports, fonts, the workers' first polls, the SMTP pool's connections.
        await run_delivery(stack, warm_event.id, body, "bench-warm", timeout)
        await _wait_sink(stack, 8)
        stack.sink.clear()

        for (batch, window), event in zip(settings, events, strict=True):
            stack.settings.bulk = BulkConfig(
                batch_size=batch, window=window, emails_per_second=UNPACED,
                continue_after_batches=stack.settings.bulk.continue_after_batches,
            )  # fmt: skip
            with _timed_renderer() as renderer:
                cpu = Cpu.now()
                flow_s, state, _ = await run_delivery(stack, event.id, body, f"bench-{batch}x{window}", timeout)
                flow_cpu = Cpu.now().since(cpu)
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

            sent = int(state["counts"].get("sent", 0))
            rounds.append({
                "batch_size": batch, "window": window, "status": state["status"], "counts": state["counts"],
                "sent": sent, "product_seconds": flow_s, "product_cpu": flow_cpu,
                "sending_span_seconds": arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan"),
                "raw_sent": len(captured), "raw_received": raw_received, "raw_seconds": raw_s, "raw_cpu": raw_cpu,
                "render_cpu": renderer.cpu if renderer else None, "render_calls": renderer.calls if renderer else 0,
                "message_bytes": sum(len(m.data) for m in captured) / max(1, len(captured)),
            })  # fmt: skip

    result.params["raw_connections"] = connections
    result.params["smtp_pool_size"] = pool_size
    best = max(rounds, key=lambda r: r["sent"] / r["product_seconds"])
    for r in rounds:
        tag = f"{r['batch_size']}x{r['window']}"
        rate = r["sent"] / r["product_seconds"]
        raw_rate = r["raw_sent"] / r["raw_seconds"] if r["raw_sent"] else float("nan")
        span = r["sending_span_seconds"]
        result.add(
            f"[{tag}] product: API -> workflow closed", rate, "emails/s",
            note=f"{r['sent']}/{n} sent in {r['product_seconds']:.2f}s; {r['status']}",
        )  # fmt: skip
        result.add(f"[{tag}] product: sending span at the sink", (r["raw_sent"] - 1) / span, "emails/s",
                   note=f"first to last message: {span:.2f}s")  # fmt: skip
        result.add(
            f"[{tag}] baseline: raw aiosmtplib, same bytes", raw_rate, "emails/s",
            note=f"{r['raw_received']}/{r['raw_sent']} received in {r['raw_seconds']:.2f}s",
        )  # fmt: skip
        result.ratio(f"[{tag}] product / raw SMTP", rate / raw_rate, target=TARGET)
        per = 1000 / max(1, r["sent"])
        used: Cpu = r["product_cpu"]
        render = f", of which render_ticket_pdf {per * r['render_cpu']:.1f}" if r["render_cpu"] is not None else ""
        result.add(
            f"[{tag}] CPU per email: product", per * used.total, "ms",
            note=f"python {per * used.python:.1f}{render} + temporal server {per * used.server:.1f}",
        )  # fmt: skip
        raw_used: Cpu = r["raw_cpu"]
        result.add(f"[{tag}] CPU per email: raw SMTP", 1000 * raw_used.total / max(1, r["raw_sent"]), "ms")
    best_tag = f"{best['batch_size']}x{best['window']}"
    best_rate = best["sent"] / best["product_seconds"]
    best_raw = best["raw_sent"] / best["raw_seconds"]
    result.ratio(f"best setting ({best_tag}): product / raw SMTP", best_rate / best_raw, target=TARGET)
    mean_size = sum(r["message_bytes"] for r in rounds) / len(rounds)
    result.add("message size (mean)", mean_size / 1024, "KiB", note="1 PDF each")
    if any(r["sent"] < n for r in rounds):
        result.notes.append("not every recipient was sent to: the rates count sent emails only")
    result.details = {"rounds": rounds, "best": best_tag}
    return result
