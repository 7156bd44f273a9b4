"""bulk-delivery (issue 5): emails/s of a bulk delivery of PDF tickets, against raw aiosmtplib sends.

For each batch setting (`--bulk-delivery-settings`, `BATCHxWINDOW`), three events with N paid
orders of 1 ticket and N distinct buyers each, and in the same run on the same SMTP sink:

1. product, cold: `POST /events/{id}/deliveries {"template": "tickets"}` for tickets whose
   PDFs were never rendered, so every PDF is rendered during the run;
2. product, warm (`--bulk-delivery-repeats` times, 3, each followed by its own baseline; the
   figures are the median pair's): the same for an event whose ticket PDFs are in the render
   cache already (rendered before the clock starts, as issuing the tickets or their first
   delivery would);
   the clock runs from the POST to the close of the `BulkDelivery` workflow (its last run),
   so it includes materialising the recipients and writing the CSV report; `GET /bulk/{id}`
   must say `completed` with N `sent`, and only sent emails count;
3. baseline: the very bytes the sink received in that warm run (same MIME, same PDF), sent
   again with plain aiosmtplib over as many connections as the product's SMTP pool;
4. activities only: the warm run's activity bodies called in this process without Temporal;
5. first delivery after an import (issue 14), `--bulk-delivery-repeats` times: N orders of a
   new event come in through `POST /imports`, whose workflow writes them and then renders
   their ticket PDFs on the `render` queue (each phase's span is read from its history);
   once it has closed, the first delivery of those tickets, then raw aiosmtplib on the bytes
   it sent (target 0.5; the median pair's figures).

The sink runs in its own process by default (`python -m devtools.smtp_sink`, as a relay is
another machine); `--bulk-delivery-sink thread` puts it back in this process, where it takes
the interpreter lock from both sides. `emails_per_second` is 100000, far above what either
side reaches, so the pacing never waits and the figure is the machine's, not the limit's.
Also reported: the sending span at the sink, CPU per email (this process, and its children:
the Temporal server and, by default, the sink), and the CPU inside `render_ticket_pdf` and
`build_mime` (both wrapped by timers for the run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from temporalio.testing import ActivityEnvironment

import activities.ticket_pdfs as ticket_pdfs_module
import email_providers.smtp as smtp_module
from activities.bulk_common import BulkActivities
from activities.bulk_delivery import BulkDeliveryActivities
from activities.contracts import BulkBatch, FinishBulk, PrepareBulk
from bench.bulk_seed import prerender_tickets, seed_event
from bench.first_delivery import Imported, import_event
from bench.report import Result
from bench.smtp_raw import RawMessage, send_raw
from bench.stack import ROOT, Cpu, Stack, product, temporal_server
from devtools.smtp_sink import arrived_at
from runtime.settings import BlobConfig, BulkConfig, CodecSettings, TemporalSettings
from runtime.temporal import connect
from ticketing.bulk import BulkKind, Selection

NAME = "bulk-delivery"
TARGET = 0.7
IMPORT_TARGET = 0.5  # issue 14: the first delivery of tickets an import issued
UNPACED = 100_000.0  # emails/s: far above anything measured here, so the pacer never waits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bulk-delivery")
    group.add_argument(
        "--bulk-delivery-orders", type=int, default=2000,
        help="orders (= recipients) per bulk delivery (default 2000: the fixed costs, materialising and the report, "
        "are a small share, as in a real bulk send)",
    )
    group.add_argument(
        "--bulk-delivery-settings",
        default="200x4,400x4",
        help="comma-separated BATCHxWINDOW settings to try, one bulk delivery each (default 200x4,400x4: the batch "
        "sizes the README suggests for large lists)",
    )
    group.add_argument(
        "--bulk-delivery-connections", type=int, default=0,
        help="raw SMTP connections (default: the product's SMTP pool size)",
    )  # fmt: skip
    group.add_argument(
        "--bulk-delivery-pool", type=int, default=0,
        help="the product's SMTP pool size (default: the product's default); the raw baseline uses as many",
    )
    group.add_argument(
        "--bulk-delivery-repeats", type=int, default=3,
        help="warm product runs (and imports, each then delivered once) per setting, each followed by its raw "
        "baseline on the bytes it sent; the verdict "
        "takes the median of their ratios, as the raw rate alone moves by a third from run to run here (default 3)",
    )  # fmt: skip
    group.add_argument(
        "--bulk-delivery-extra-workers", type=int, default=0,
        help="extra worker processes (`python -m workers.main`) beside the in-process workers (default 0)",
    )
    group.add_argument(
        "--bulk-delivery-render-processes", type=int, default=0,
        help="the product's render_processes: PDF rendering on a cache miss in that many processes (default 0)",
    )
    group.add_argument(
        "--bulk-delivery-sink", choices=("thread", "process"), default="process",
        help="the SMTP sink in its own process, as a relay is (default), or in this process's thread",
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
_TIMED = {"render_ticket_pdf": (ticket_pdfs_module, "render_ticket_pdfs"), "build_mime": (smtp_module, "build_mime")}


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


async def _timed_delivery(stack: Stack, event_id: str, key: str, timeout: float) -> dict[str, Any]:
    with _timers() as timers:
        cpu = Cpu.now()
        seconds, state, _ = await run_delivery(stack, event_id, {"template": "tickets"}, key, timeout)
        used = Cpu.now().since(cpu)
    return {
        "seconds": seconds, "cpu": used, "status": state["status"], "counts": state["counts"],
        "sent": int(state["counts"].get("sent", 0)),
        "timed_cpu": {label: {"cpu": t.cpu, "calls": t.calls} for label, t in timers.items()},
    }  # fmt: skip


async def _one_setting(
    stack: Stack, batch: int, window: int, events: dict[str, str], n: int, connections: int, timeout: float,
    repeats: int,
) -> dict[str, Any]:
    """Cold (first delivery: every PDF rendered), then `repeats` pairs of warm (PDFs in the cache) and raw SMTP
    on the bytes that warm run sent, then activities only (warm). The figures are the median pair's."""
    stack.settings.bulk = BulkConfig(
        batch_size=batch, window=window, emails_per_second=UNPACED,
        continue_after_batches=stack.settings.bulk.continue_after_batches,
        batch_concurrency=stack.settings.bulk.batch_concurrency,
    )  # fmt: skip
    tag = f"{batch}x{window}"
    cold = await _timed_delivery(stack, events["cold"], f"bench-{tag}-cold", timeout)
    await _wait_sink(stack, n)
    stack.sink.clear()

    pairs = [  # the same tickets each time: a new bulk id is a new message id
        await _paired(stack, events["warm"], f"bench-{tag}-warm-{repeat}", n, connections, timeout)
        for repeat in range(max(1, repeats))
    ]
    # The first delivery after an import, `repeats` times: the orders of a new event come in through
    # POST /imports, whose render phase fills the cache (timed on its own), then that event's one and
    # only delivery and a raw run on its bytes. The figures are the median pair's, as for warm.
    after_imports: list[dict[str, Any]] = []
    for repeat in range(max(1, repeats)):
        imported = await import_event(stack, n, timeout)
        pair = await _paired(stack, imported.event_id, f"bench-{tag}-imported-{repeat}", n, connections, timeout)
        after_imports.append({**pair, "imported": imported, "ratio": _pair_ratio(pair)})
    after_import = sorted(after_imports, key=lambda p: p["ratio"])[len(after_imports) // 2]

    cpu = Cpu.now()
    inline_s, inline_sent = await run_activities_only(stack, events["inline"], batch, window, tag)
    inline_cpu = Cpu.now().since(cpu)
    await _wait_sink(stack, inline_sent)
    stack.sink.clear()
    ratios = [(p["warm"]["sent"] / p["warm"]["seconds"]) / (p["raw_sent"] / p["raw_seconds"]) for p in pairs]
    median = pairs[sorted(range(len(pairs)), key=ratios.__getitem__)[len(pairs) // 2]]
    return {
        **median, "batch_size": batch, "window": window, "cold": cold, "pairs": pairs, "warm_ratios": ratios,
        "activities_seconds": inline_s, "activities_sent": inline_sent, "activities_cpu": inline_cpu,
        "after_import": after_import, "after_imports": after_imports,
    }  # fmt: skip


async def _paired(
    stack: Stack, event_id: str, key: str, n: int, connections: int, timeout: float
) -> dict[str, Any]:
    """A timed delivery, then raw aiosmtplib on the very bytes it sent, over as many connections."""
    misses = stack.deps.ticket_pdfs().rendered
    warm = await _timed_delivery(stack, event_id, key, timeout)
    warm["rendered"] = stack.deps.ticket_pdfs().rendered - misses  # PDFs this delivery had to render
    await _wait_sink(stack, n)
    deliveries = list(stack.sink.deliveries)
    captured = [RawMessage(d.mail_from, d.rcpt_tos, d.path.read_bytes()) for d in deliveries]
    arrivals = sorted(arrived_at(d.path) for d in deliveries)
    stack.sink.clear()

    cpu = Cpu.now()
    raw_s = await send_raw("127.0.0.1", stack.sink.port, captured, connections)
    raw_cpu = Cpu.now().since(cpu)
    await _wait_sink(stack, len(captured))
    received = len(stack.sink.deliveries)
    stack.sink.clear()
    return {
        "warm": warm, "raw_sent": len(captured), "raw_received": received, "raw_seconds": raw_s,
        "raw_cpu": raw_cpu,
        "sending_span_seconds": arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan"),
        "message_bytes": sum(len(m.data) for m in captured) / max(1, len(captured)),
    }  # fmt: skip


def _report(result: Result, r: dict[str, Any], n: int) -> None:
    tag = f"{r['batch_size']}x{r['window']}"
    raw_rate = r["raw_sent"] / r["raw_seconds"] if r["raw_sent"] else float("nan")
    inline_rate = r["activities_sent"] / r["activities_seconds"]
    span = r["sending_span_seconds"]
    rates = {}
    for phase, label in (("warm", "PDFs rendered before"), ("cold", "first delivery, renders every PDF")):
        run = r[phase]
        rates[phase] = run["sent"] / run["seconds"]
        result.add(f"[{tag}] product ({label})", rates[phase], "emails/s",
                   note=f"{run['sent']}/{n} sent in {run['seconds']:.2f}s; {run['status']}")  # fmt: skip
    result.add(f"[{tag}] product (warm): sending span at the sink", (r["raw_sent"] - 1) / span, "emails/s",
               note=f"first to last message: {span:.2f}s")  # fmt: skip
    result.add(f"[{tag}] activities only (warm), no Temporal/API", inline_rate, "emails/s",
               note=f"{r['activities_sent']}/{n} sent in {r['activities_seconds']:.2f}s")  # fmt: skip
    result.add(f"[{tag}] baseline: raw aiosmtplib, same bytes", raw_rate, "emails/s",
               note=f"{r['raw_received']}/{r['raw_sent']} received in {r['raw_seconds']:.2f}s")  # fmt: skip
    each = ", ".join(f"{x:.2f}" for x in r["warm_ratios"])
    result.ratio(f"[{tag}] product (warm) / raw SMTP, median pair", rates["warm"] / raw_rate, target=TARGET,
                 note=f"each pair: {each}")  # fmt: skip
    result.ratio(f"[{tag}] product (cold) / raw SMTP", rates["cold"] / raw_rate, target=TARGET)
    result.ratio(f"[{tag}] product (warm) / activities only", rates["warm"] / inline_rate)
    for phase in ("warm", "cold"):
        run = r[phase]
        per = 1000 / max(1, run["sent"])
        used: Cpu = run["cpu"]
        parts = ", ".join(f"{label} {per * t['cpu']:.1f}" for label, t in run["timed_cpu"].items())
        result.add(f"[{tag}] CPU per email: product ({phase})", per * used.total, "ms",
                   note=f"{_per_email(used, run['sent'])}; inside: {parts}")  # fmt: skip
    inline: Cpu = r["activities_cpu"]
    result.add(f"[{tag}] CPU per email: activities only", 1000 * inline.total / max(1, r["activities_sent"]), "ms",
               note=_per_email(inline, r["activities_sent"]))  # fmt: skip
    raw_used: Cpu = r["raw_cpu"]
    result.add(f"[{tag}] CPU per email: raw SMTP", 1000 * raw_used.total / max(1, r["raw_sent"]), "ms")
    _report_import(result, r, n)


def _pair_ratio(pair: dict[str, Any]) -> float:
    return float((pair["warm"]["sent"] / pair["warm"]["seconds"]) / (pair["raw_sent"] / pair["raw_seconds"]))


def _after_import_ratio(r: dict[str, Any]) -> float:
    return _pair_ratio(r["after_import"])


def _report_import(result: Result, r: dict[str, Any], n: int) -> None:
    """The import that issued the tickets (its render phase on its own), then their first delivery."""
    tag = f"{r['batch_size']}x{r['window']}"
    pair = r["after_import"]
    imported: Imported = pair["imported"]
    run = pair["warm"]
    result.add(f"[{tag}] POST /imports of {n} orders (checked and staged)", imported.request_seconds, "s",
               note=f"then the workflow {imported.workflow_seconds:.2f}s to its close")  # fmt: skip
    for phase, what in (("import", "orders written"), ("render", "ticket PDFs rendered ahead (render queue)")):
        seconds, batches = imported.phases.get(phase, (float("nan"), 0))
        result.add(f"[{tag}]   {phase} phase: {what}", n / seconds, "per s",
                   note=f"{n} in {seconds:.2f}s, {batches} batches")  # fmt: skip
    note = f"{run['sent']}/{n} sent in {run['seconds']:.2f}s; {run['status']}; PDFs rendered during it: "
    note += f"{run['rendered']} (in the import's render phase: {imported.rendered})"
    result.add(f"[{tag}] product (first delivery after an import)", run["sent"] / run["seconds"], "emails/s",
               note=note)  # fmt: skip
    result.add(f"[{tag}] baseline: raw aiosmtplib, the same bytes", pair["raw_sent"] / pair["raw_seconds"],
               "emails/s", note=f"{pair['raw_received']}/{pair['raw_sent']} received in {pair['raw_seconds']:.2f}s")
    each = ", ".join(f"{p['ratio']:.2f}" for p in r["after_imports"])
    renders = ", ".join(f"{n / p['imported'].phases['render'][0]:.0f}" for p in r["after_imports"])
    result.ratio(f"[{tag}] product (first delivery after an import) / raw SMTP, median pair", _after_import_ratio(r),
                 target=IMPORT_TARGET, note=f"each pair: {each}; render phases: {renders} PDFs/s")  # fmt: skip
    used: Cpu = run["cpu"]
    result.add(f"[{tag}] CPU per email: product (first delivery after an import)",
               1000 * used.total / max(1, run["sent"]), "ms", note=_per_email(used, run["sent"]))  # fmt: skip


@contextlib.asynccontextmanager
async def _extra_workers(stack: Stack, count: int, workdir: Path) -> AsyncIterator[None]:
    """`count` more worker processes polling the same queues: the email queue scaled out."""
    settings = stack.settings
    env = {
        **os.environ,
        "TICKETOPS_DATABASE_URL": settings.database_url,
        "TICKETOPS_TEMPORAL__ADDRESS": settings.temporal.address,
        "TICKETOPS_TEMPORAL__QUEUE_PREFIX": settings.temporal.queue_prefix,
        "TICKETOPS_EMAIL__SMTP__PORT": str(stack.sink.port),
        "TICKETOPS_EMAIL__SMTP__POOL_SIZE": str(settings.email.smtp.pool_size),
        "TICKETOPS_BLOBS__ROOT": settings.blobs.root,
        "TICKETOPS_CODEC__KEYS": json.dumps({k: v.get_secret_value() for k, v in settings.codec.keys.items()}),
        "TICKETOPS_CODEC__ACTIVE_KEY_ID": settings.codec.active_key_id,
        "TICKETOPS_BULK__BATCH_CONCURRENCY": str(settings.bulk.batch_concurrency),
        "TICKETOPS_LOG_LEVEL": "WARNING",
    }
    processes = []
    for n in range(count):
        log = (workdir / f"worker-{n}.log").open("ab")
        processes.append(
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "workers.main", cwd=str(ROOT), env=env, stdout=log, stderr=log
            )
        )
    try:
        await asyncio.sleep(8 if count else 0)  # imports and first polls, outside every timing
        yield
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout=20)
            if process.returncode is None:
                process.kill()


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    n = max(1, args.bulk_delivery_orders)
    settings = parse_settings(args.bulk_delivery_settings)
    result = Result(
        NAME,
        {"orders": n, "tickets_per_order": 1, "settings": args.bulk_delivery_settings,
         "emails_per_second": UNPACED, "temporal_db": args.temporal_db, "sink": args.bulk_delivery_sink,
         "extra_worker_processes": args.bulk_delivery_extra_workers,
         "render_processes": args.bulk_delivery_render_processes, "repeats": args.bulk_delivery_repeats},
    )  # fmt: skip
    timeout = max(180.0, n * 1.0)
    rounds: list[dict[str, Any]] = []
    overrides = {
        "blobs": BlobConfig(root=str(workdir / "blobs")),
        "bulk": BulkConfig(emails_per_second=UNPACED),
        "render_processes": args.bulk_delivery_render_processes,
    }
    async with temporal_server(workdir, in_memory=args.temporal_db == "memory") as plain_client:
        client = plain_client
        if args.bulk_delivery_extra_workers:  # worker processes encrypt payloads: the whole stack must share the codec
            client = await connect(
                TemporalSettings(address=plain_client.service_client.config.target_host), codec=CodecSettings()
            )
        async with (
            product(
                client, workdir / "stack", settings_overrides=overrides,
                sink_process=args.bulk_delivery_sink == "process", smtp_pool_size=args.bulk_delivery_pool or None,
            ) as stack,  # fmt: skip
            contextlib.AsyncExitStack() as stack_extra,
        ):
            pool_size = stack.settings.email.smtp.pool_size
            connections = args.bulk_delivery_connections or pool_size
            warm_event, _ = await seed_event(stack.store, 8, tag="warm")
            events = []
            for _ in settings:
                seeded = {phase: (await seed_event(stack.store, n))[0].id for phase in ("cold", "warm", "inline")}
                for phase in ("warm", "inline"):  # as issuing, or the first delivery of these tickets, would have
                    await prerender_tickets(stack.store, stack.deps.ticket_pdfs(), seeded[phase])
                events.append(seeded)

            await stack_extra.enter_async_context(_extra_workers(stack, args.bulk_delivery_extra_workers, workdir))
            # Warm-up: imports, fonts, the workers' first polls, the SMTP pool's connections.
            await run_delivery(stack, warm_event.id, {"template": "tickets"}, "bench-warm", timeout)
            await _wait_sink(stack, 8)
            stack.sink.clear()

            for (batch, window), seeded in zip(settings, events, strict=True):
                repeats = args.bulk_delivery_repeats
                rounds.append(await _one_setting(stack, batch, window, seeded, n, connections, timeout, repeats))

    result.params |= {"raw_connections": connections, "smtp_pool_size": pool_size}
    for r in rounds:
        _report(result, r, n)

    def ratio(r: dict[str, Any], phase: str) -> float:
        return float((r[phase]["sent"] / r[phase]["seconds"]) / (r["raw_sent"] / r["raw_seconds"]))

    best = max(rounds, key=lambda r: ratio(r, "warm"))
    best_tag = f"{best['batch_size']}x{best['window']}"
    result.ratio(f"best setting ({best_tag}): product (warm) / raw SMTP", ratio(best, "warm"), target=TARGET)
    result.ratio(f"best setting ({best_tag}): product (cold) / raw SMTP", ratio(best, "cold"), target=TARGET)
    first = max(rounds, key=_after_import_ratio)
    result.ratio(f"best setting ({first['batch_size']}x{first['window']}): first delivery after an import / raw SMTP",
                 _after_import_ratio(first), target=IMPORT_TARGET)  # fmt: skip
    mean_size = sum(r["message_bytes"] for r in rounds) / len(rounds)
    result.add("message size (mean)", mean_size / 1024, "KiB", note="1 PDF each")
    if any(r["warm"]["sent"] < n or r["cold"]["sent"] < n or r["activities_sent"] < n
           or r["after_import"]["warm"]["sent"] < n for r in rounds):
        result.notes.append("not every recipient was sent to: the rates count sent emails only")
    result.details = {"rounds": rounds, "best": best_tag}
    return result
