"""scale (issue 5): a bulk delivery (`message` template, no PDFs) to 1k, 10k, 100k buyers.

Per size (`--sizes`, default 1000,10000): an event with that many paid orders of one ticket
and distinct buyers is seeded into the dev store (a SQLite file) with large multi-row
transactions (`bench.bulk_seed`), then `POST /events/{id}/deliveries` sends every buyer a
message at an unpaced rate (`emails_per_second` 100000). The workers run as a separate
process, `python -m workers.main` with `tests.harness.worker_env` (a fresh one per size,
warmed up with a 20-buyer delivery); the API and the SMTP sink stay in this process, the
Temporal dev server (SQLite file) is a child process.

Reported per size:
- wall time from the POST to the close of the workflow's last run, and emails/s;
- the worker's RSS, sampled from /proc every 0.2 s: before the POST, peak, after the close;
- every run of the workflow id (followed back from the last run through each run's
  `continued_execution_run_id`): its history events, and the largest payload in any event
  (each `Payload` message's serialized size, as stored: encrypted by the payload codec).

`--scale-max-seconds` bounds a size's delivery: past it the bulk is cancelled through the
API (`POST /bulk/{id}/cancel`) and the figures cover what was sent, with the rate and an
extrapolation to the full size. There is no ratio: the limits are the figures' own
(payloads < 256 KiB, history bounded by continue-as-new).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench.bulk_seed import seed_event
from bench.report import Result
from bench.stack import ROOT, temporal_server
from runtime.codec import data_converter
from runtime.settings import AuthSettings, BlobConfig, BulkConfig
from tests.codec_keys import TEST_CODEC
from tests.harness import Harness, running, worker_env
from ticketing.store.engine import Store
from ticketing.store.migrate import upgrade

NAME = "scale"
PAYLOAD_LIMIT = 256 * 1024
UNPACED = 100_000.0
WARM_BUYERS = 20
BODY = {"template": "message", "subject": "Doors open at 18:30", "body": "See you tonight at Pier 4."}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scale")
    group.add_argument(
        "--sizes",
        default="1000,10000",
        help="comma-separated order counts, one bulk delivery each (default 1000,10000)",
    )
    group.add_argument("--scale-batch", type=int, default=100, help="bulk batch_size (default 100)")
    group.add_argument("--scale-window", type=int, default=8, help="bulk window (default 8)")
    group.add_argument(
        "--scale-continue-after", type=int, default=100, help="continue_after_batches (default 100, the product's)"
    )
    group.add_argument(
        "--scale-analyze", action="store_true",
        help="what-if, off by default: run SQLite's ANALYZE after seeding, so the planner has statistics",
    )  # fmt: skip
    group.add_argument(
        "--scale-max-seconds", type=float, default=1800.0,
        help="cancel a size's delivery after this long and report how far it got (default 1800)",
    )  # fmt: skip


# --- the worker process and its memory ---------------------------------------------------------


@dataclass
class RssSampler:
    pid: int
    samples: list[tuple[float, int]] = field(default_factory=list)  # (monotonic seconds, bytes)

    def cpu(self) -> float:
        """The process's user + system CPU seconds so far (0 once it is gone)."""
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return 0.0

    def read(self) -> int:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def sample(self) -> int:
        rss = self.read()
        if rss:
            self.samples.append((time.perf_counter(), rss))
        return rss

    @contextlib.asynccontextmanager
    async def running(self, every: float = 0.2) -> AsyncIterator[RssSampler]:
        async def loop() -> None:
            while True:
                self.sample()
                await asyncio.sleep(every)

        task = asyncio.create_task(loop())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def worker_process(h: Harness, log_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m workers.main` for this harness; SIGTERM (then SIGKILL) at the end, by its pid."""
    env = worker_env(h, TICKETOPS_LOG_LEVEL="WARNING")
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workers.main", cwd=str(ROOT), env=env, stdout=log, stderr=log
        )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                await proc.wait()


async def wait_pollers(
    client: Client, prefix: str, proc: asyncio.subprocess.Process, activity_queues: tuple[str, ...] = ("email",),
    timeout: float = 180,
) -> float:  # fmt: skip
    """Until the worker polls its orders queue (workflows) and `activity_queues`; seconds waited."""
    started = time.perf_counter()
    wanted = [(f"{prefix}orders", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)]
    wanted += [(f"{prefix}{q}", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY) for q in activity_queues]
    while time.perf_counter() - started < timeout:
        if proc.returncode is not None:
            raise RuntimeError(f"the worker process exited with {proc.returncode} before polling")
        ready = 0
        for name, kind in wanted:
            resp = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace, task_queue=TaskQueue(name=name), task_queue_type=kind
                )
            )
            # The server remembers earlier pollers for minutes: only this process's count (SDK identity "pid@host").
            ready += any(p.identity.startswith(f"{proc.pid}@") for p in resp.pollers)
        if ready == len(wanted):
            return time.perf_counter() - started
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the worker did not poll within {timeout:.0f}s")


# --- histories ---------------------------------------------------------------------------------


def _payload_sizes(msg: Message) -> Iterator[int]:
    """The serialized size of every `Payload` inside a protobuf message, at any depth."""
    if isinstance(msg, Payload):
        yield msg.ByteSize()
        return
    for fd, value in msg.ListFields():
        if fd.message_type is None:
            continue
        if fd.message_type.GetOptions().map_entry:
            for item in value.values():
                if isinstance(item, Message):
                    yield from _payload_sizes(item)
        elif fd.is_repeated:
            for item in value:
                yield from _payload_sizes(item)
        else:
            yield from _payload_sizes(value)


async def run_histories(client: Client, workflow_id: str) -> list[dict[str, Any]]:
    """Every run of `workflow_id`, first to last: run id, events, largest payload (and its event), history bytes."""
    runs: list[dict[str, Any]] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        largest, largest_type, event_bytes = 0, "", 0
        for event in history.events:
            event_bytes = max(event_bytes, event.ByteSize())
            for size in _payload_sizes(event):
                if size > largest:
                    largest, largest_type = size, EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        started = history.events[0].workflow_execution_started_event_attributes
        runs.append({
            "run_id": run_id or "(latest)", "events": len(history.events), "largest_payload": largest,
            "largest_payload_event": largest_type, "largest_event": event_bytes,
            "history_bytes": sum(e.ByteSize() for e in history.events),
        })  # fmt: skip
        previous = started.continued_execution_run_id
        if not previous:
            return runs[::-1]
        run_id = previous


# --- one size ----------------------------------------------------------------------------------


async def _progress(h: Harness, bulk_id: str) -> dict[str, Any]:
    resp = await h.http.get(f"/bulk/{bulk_id}", timeout=120)
    if resp.status_code != 200:
        raise RuntimeError(f"GET /bulk/{bulk_id} answered {resp.status_code}: {resp.text}")
    body: dict[str, Any] = resp.json()
    return body


async def _deliver(h: Harness, event_id: str, key: str) -> dict[str, str]:
    resp = await h.http.post(f"/events/{event_id}/deliveries", json=BODY, headers={"Idempotency-Key": key}, timeout=120)
    if resp.status_code != 202:
        raise RuntimeError(f"POST deliveries answered {resp.status_code}: {resp.text}")
    accepted: dict[str, str] = resp.json()
    return accepted


async def _wait_closed(client: Client, workflow_id: str, limit: float) -> bool:
    """True when the workflow (following continue-as-new) closed within `limit` seconds."""
    try:
        await asyncio.wait_for(client.get_workflow_handle(workflow_id).result(), limit)
        return True
    except TimeoutError:
        return False


async def one_size(h: Harness, plain: Client, size: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    event, seed_s = await seed_event(h.store, size, tag=f"s{size}")
    warm, _ = await seed_event(h.store, WARM_BUYERS, tag=f"w{size}")
    print(f"   {size}: seeded in {seed_s:.1f}s", flush=True)
    if args.scale_analyze:
        async with h.store.transaction() as conn:
            await conn.exec_driver_sql("ANALYZE")
    out: dict[str, Any] = {"size": size, "seed_seconds": seed_s}
    async with worker_process(h, workdir / f"worker-{size}.log") as proc:
        rss = RssSampler(proc.pid)
        out["worker_ready_seconds"] = await wait_pollers(plain, h.prefix, proc)
        out["rss_ready"] = rss.read()
        accepted = await _deliver(h, warm.id, f"bench-warm-{size}")
        if not await _wait_closed(h.client, accepted["operation_id"], 300):
            raise RuntimeError(f"the warm-up delivery of {WARM_BUYERS} emails did not finish in 300s")
        h.sink.clear()

        rss.samples.clear()
        async with rss.running():
            out["rss_start"] = rss.sample()
            cpu_start = rss.cpu()
            started = time.perf_counter()
            accepted = await _deliver(h, event.id, f"bench-{size}")
            wid = accepted["operation_id"]
            finished = await _wait_closed(h.client, wid, args.scale_max_seconds)
            if not finished:
                print(f"   {size}: still running after {args.scale_max_seconds:.0f}s; cancelling", flush=True)
                cut = await _progress(h, accepted["bulk_id"])
                out["cut_at"] = {"seconds": time.perf_counter() - started, "processed": cut.get("processed")}
                await h.http.post(f"/bulk/{accepted['bulk_id']}/cancel", timeout=120)
                await _wait_closed(h.client, wid, 600)
            wall = time.perf_counter() - started
            out["rss_end"] = rss.sample()
            out["worker_cpu_seconds"] = rss.cpu() - cpu_start
        out["rss_peak"] = max((b for _, b in rss.samples), default=0)
        state = await _progress(h, accepted["bulk_id"])
        out["worker_exit"] = proc.returncode
    out |= {"finished": finished, "wall_seconds": wall, "status": state["status"], "counts": state["counts"],
            "sent": int(state["counts"].get("sent", 0)), "sink_received": len(h.sink.deliveries),
            "workflow_id": wid}  # fmt: skip
    h.sink.clear()
    out["runs"] = await run_histories(plain, wid)
    return out


# --- the benchmark -----------------------------------------------------------------------------


def _mib(n: int) -> float:
    return n / (1024 * 1024)


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    bulk = BulkConfig(batch_size=args.scale_batch, window=args.scale_window, emails_per_second=UNPACED,
                      continue_after_batches=args.scale_continue_after)  # fmt: skip
    result = Result(NAME, {"sizes": args.sizes, "batch_size": bulk.batch_size, "window": bulk.window,
                           "continue_after_batches": bulk.continue_after_batches, "emails_per_second": UNPACED,
                           "template": "message", "analyze": args.scale_analyze,
                           "temporal_db": args.temporal_db})  # fmt: skip
    url = f"sqlite+aiosqlite:///{workdir / 'ticketops.sqlite'}"
    await upgrade(url)
    store = Store(url)
    overrides = {"blobs": BlobConfig(root=str(workdir / "blobs")), "bulk": bulk,
                 "auth": AuthSettings(rate_limit_per_minute=None)}  # fmt: skip
    outcomes: list[dict[str, Any]] = []
    try:
        async with temporal_server(workdir, in_memory=args.temporal_db == "memory") as plain:
            # The API and the worker process encrypt payloads with the same keys (the harness's).
            client = Client(plain.service_client, namespace=plain.namespace, data_converter=data_converter(TEST_CODEC))
            prefix = f"s{os.getpid()}-"
            async with running(client, store, workdir, prefix, with_workers=False, settings_overrides=overrides) as h:
                for size in sizes:
                    outcomes.append(await one_size(h, plain, size, args, workdir))
    finally:
        await store.dispose()

    for o in outcomes:
        tag = f"[{o['size']}]"
        rate = o["sent"] / o["wall_seconds"]
        done = "" if o["finished"] else f"; CANCELLED at the time limit, extrapolated {o['size'] / rate:.0f}s for all"
        result.add(f"{tag} emails/s, API -> last run closed", rate, "emails/s",
                   note=f"{o['sent']}/{o['size']} sent in {o['wall_seconds']:.1f}s; {o['status']}{done}")  # fmt: skip
        result.add(f"{tag} wall time", o["wall_seconds"], "s", note=f"seeding (not timed) {o['seed_seconds']:.1f}s")
        worker_cpu = o["worker_cpu_seconds"]
        result.add(f"{tag} worker CPU per email", 1000 * worker_cpu / max(1, o["sent"]), "ms",
                   note=f"the worker process was busy {worker_cpu / o['wall_seconds']:.0%} of one core")  # fmt: skip
        result.add(f"{tag} worker RSS: start / peak / end", _mib(o["rss_peak"]), "MiB peak",
                   note=f"{_mib(o['rss_start']):.0f} / {_mib(o['rss_peak']):.0f} / {_mib(o['rss_end']):.0f} MiB; "
                        f"{_mib(o['rss_ready']):.0f} MiB when it first polled")  # fmt: skip
        runs = o["runs"]
        biggest = max(runs, key=lambda r: r["largest_payload"])
        result.add(f"{tag} largest payload in any run's history", biggest["largest_payload"] / 1024, "KiB",
                   note=f"in {biggest['largest_payload_event']}; limit {PAYLOAD_LIMIT // 1024} KiB: "
                        f"{'under' if biggest['largest_payload'] < PAYLOAD_LIMIT else 'OVER'}")  # fmt: skip
        events = [r["events"] for r in runs]
        result.add(f"{tag} history events per run (max)", max(events), "events",
                   note=f"{len(runs)} runs: {', '.join(map(str, events))}")  # fmt: skip
    result.details = {"sizes": outcomes}
    return result
