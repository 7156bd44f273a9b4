"""reconcile (issue 11): reconcile a window of N processor refunds against the ledger, vs the raw SDK paging them.

Per size (`--reconcile-sizes`, default 10000): N refunds of paid card orders, all in one
past window, are seeded on both sides, agreeing: on the Stripe stand-in (each refund,
with our metadata, and its `refund` balance transaction, written straight into the
stand-in's store, cloned from a refund the stand-in made through the SDK) and in the
ledger (orders and `refunded` refund rows, inserted in large transactions). Nothing
is timed while seeding.

Timed, in this order, on the same stand-in in the same run:
- the raw `stripe` SDK paging the window's refunds (`refunds.list_async`, `created`
  range, 100 a page, `starting_after`) as fast as it can, and again paced at the
  product's read rate (`--reconcile-read-rate`, pages/s: a processor's read limit holds
  for both); and paging the refunds plus their balance transactions (what the product
  must read), paced;
- the product: a `Reconcile` run of that window started with the client, run by a real
  worker process (`python -m workers.main`); the clock stops when its last run closes
  (after the report and, if items are open, the email).

Reported per size: refunds/s of each, the ratios (target product / raw SDK paced >= 0.8),
the items found (a clean window must give none), the worker's RSS (start, peak, end) and
every run's history length (the largest is the figure). The API, the stand-in and the
SMTP sink stay in this process; Temporal is a child process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from temporalio.client import Client

from backoffice.schedules import reconcile_input
from bench.bulk_seed import _insert_rows, bench_event, build_orders, insert_event_row, templated_rows
from bench.report import Result
from bench.scale import RssSampler, run_histories, wait_pollers, worker_process
from bench.stack import temporal_server
from devtools.stripe_server.client import stripe_client
from devtools.stripe_server.server import StripeServer
from devtools.stripe_server.store import new_id
from runtime.codec import data_converter
from runtime.settings import AuthSettings, BlobConfig, StripeSettings
from tests.codec_keys import TEST_CODEC
from tests.harness import Harness, running
from ticketing.models import Processor
from ticketing.reconciliation_records import ReconWindow
from ticketing.store.engine import Store
from ticketing.store.migrate import upgrade
from ticketing.store.tables import refunds
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_contracts import ReconTiming, reconcile_workflow_id

NAME = "reconcile"
TARGET = 0.8
PAGE = 100
CHUNK = 5000
REFUND = 3500  # a one-ticket order's ticket; its service fee is kept
DAY = timedelta(days=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reconcile")
    group.add_argument(
        "--reconcile-sizes", default="10000", help="comma-separated refund counts, one window each (default 10000)"
    )
    group.add_argument(
        "--reconcile-read-rate", type=float, default=ReconTiming().read_rate_per_second,
        help="the processor read rate, pages/s, for the product and the paced baseline "
        f"(default {ReconTiming().read_rate_per_second:g}, the product's: under Stripe test mode's 25/s)",
    )  # fmt: skip
    group.add_argument(
        "--reconcile-max-seconds", type=float, default=3600.0, help="give up on a run after this long (default 3600)"
    )


# --- seeding ---------------------------------------------------------------------------------


async def _templates(stripe: StripeServer) -> tuple[dict[str, Any], dict[str, Any]]:
    """One refund (with our metadata shape) and its balance transaction, made by the stand-in itself."""
    client = stripe_client(stripe.base_url, stripe.config.api_key)
    paid: dict[str, Any] = {
        "amount": REFUND + 250, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True,
        "allowed_payment_method_types": ["card"],
    }  # fmt: skip
    intent = await client.v1.payment_intents.create_async(params=cast(Any, paid))
    metadata = {"refund_id": "rf_template", "idempotency_key": "template", "order_code": "TEMPLATE",
                "workflow_id": "refund/TEMPLATE/template"}  # fmt: skip
    refund = await client.v1.refunds.create_async(
        params={"payment_intent": intent.id, "amount": REFUND, "metadata": metadata}
    )
    store = stripe.state.store
    stored = store.get("refund", refund.id)
    txn = store.get("balance_transaction", str(refund.balance_transaction))
    if stored is None or txn is None:
        raise RuntimeError("the stand-in did not store the template refund and its balance transaction")
    return stored, txn


def _stamp(window: ReconWindow, i: int, n: int) -> int:
    """Spread over the window, inside it on whole seconds."""
    span = int((window.end - window.start).total_seconds()) - 2
    return math.ceil(window.start.timestamp()) + 1 + (i * span) // max(1, n)


async def seed(h: Harness, stripe: StripeServer, n: int, window: ReconWindow, tag: str) -> float:
    """N agreeing refunds on both sides; seconds taken."""
    started = time.perf_counter()
    refund_tpl, txn_tpl = await _templates(stripe)
    event, ticket_type = bench_event(f"r{tag}")
    await insert_event_row(h.store, event, ticket_type)
    order_tpl = build_orders(event, ticket_type, 0, 1)[0]
    codes: set[str] = set()
    store = stripe.state.store
    for first in range(0, n, CHUNK):
        size = min(CHUNK, n - first)
        order_rows, ticket_rows = templated_rows(order_tpl, first, size, f"r{tag}", codes)
        ledger_rows: list[dict[str, Any]] = []
        with store.transaction():
            for k, row in enumerate(order_rows):
                i = first + k
                created = _stamp(window, i, n)
                at = datetime.fromtimestamp(created, UTC)
                pi, charge = f"pi_b{tag}x{i}", f"ch_b{tag}x{i}"
                row["payment_reference"] = pi
                rid = f"rf_b{tag}x{i:07d}"
                wid = f"refund/{row['code']}/bench-{i}"
                re_id, txn_id = new_id("re"), new_id("txn")
                store.put(refund_tpl | {
                    "id": re_id, "created": created, "payment_intent": pi, "charge": charge,
                    "balance_transaction": txn_id,
                    "metadata": {"refund_id": rid, "idempotency_key": f"{wid}/1", "order_code": row["code"],
                                 "workflow_id": wid},
                })  # fmt: skip
                store.put(txn_tpl | {"id": txn_id, "created": created, "available_on": created, "source": re_id})
                ledger_rows.append({
                    "id": rid, "order_code": row["code"], "kind": "full", "amount": REFUND, "currency": "EUR",
                    "ticket_ids": [], "fees_kept": 250, "reason": "bench", "status": "refunded",
                    "processor": Processor.STRIPE.value, "workflow_id": wid, "attempt": 1,
                    "processor_refund_id": re_id, "requested_by": "bench", "created_at": at, "updated_at": at,
                })  # fmt: skip
        await _insert_rows(h.store, order_rows, ticket_rows)
        async with h.store.transaction() as conn:
            await conn.execute(refunds.insert(), ledger_rows)
    return time.perf_counter() - started


# --- the baseline: the raw SDK ---------------------------------------------------------------


class Pace:
    """At most `rate` calls a second, evenly spaced."""

    def __init__(self, rate: float | None) -> None:
        self.gap = 1.0 / rate if rate else 0.0
        self.next = time.perf_counter()

    async def wait(self) -> None:
        if self.gap:
            now = time.perf_counter()
            if self.next > now:
                await asyncio.sleep(self.next - now)
            self.next = max(now, self.next) + self.gap


async def raw_page(
    stripe: StripeServer, window: ReconWindow, rate: float | None, *, expand: bool = False
) -> tuple[int, float]:
    """Refunds paged with the plain SDK; (count, seconds). `expand`: with their balance transactions inline."""
    client = stripe_client(stripe.base_url, stripe.config.api_key)
    created = {"gte": math.ceil(window.start.timestamp()), "lt": math.ceil(window.end.timestamp())}
    pace = Pace(rate)
    count = 0
    started = time.perf_counter()
    inline = {"expand": ["data.balance_transaction", "data.failure_balance_transaction"]} if expand else {}
    listings: list[tuple[Any, dict[str, Any]]] = [(client.v1.refunds, inline)]
    for api, extra in listings:
        params: dict[str, Any] = {"created": created, "limit": PAGE, **extra}
        while True:
            await pace.wait()
            page = await api.list_async(params=cast(Any, params))
            count += len(page.data)
            if not page.has_more or not page.data:
                break
            params["starting_after"] = page.data[-1].id
    return count, time.perf_counter() - started


# --- the product -----------------------------------------------------------------------------


async def one_size(
    h: Harness, plain: Client, stripe: StripeServer, n: int, args: argparse.Namespace, workdir: Path, index: int
) -> dict[str, Any]:
    days_back = 3 + index  # a window of its own per size
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - days_back * DAY
    window = ReconWindow(start=end - DAY, end=end)
    out: dict[str, Any] = {"size": n, "window": window.label}
    out["seed_seconds"] = await seed(h, stripe, n, window, tag=str(n))
    print(f"   {n}: seeded in {out['seed_seconds']:.1f}s", flush=True)

    rate = args.reconcile_read_rate
    count, seconds = await raw_page(stripe, window, None)
    out["raw_unpaced"] = {"records": count, "seconds": seconds}
    count, seconds = await raw_page(stripe, window, rate)
    out["raw_paced"] = {"records": count, "seconds": seconds}
    count, seconds = await raw_page(stripe, window, rate, expand=True)
    out["raw_paced_expanded"] = {"records": count, "seconds": seconds}
    print(f"   {n}: raw SDK {out['raw_unpaced']['seconds']:.1f}s unpaced, {out['raw_paced']['seconds']:.1f}s paced",
          flush=True)  # fmt: skip

    inp = reconcile_input(h.settings, Processor.STRIPE, window, actor="bench")
    inp = inp.model_copy(update={"timing": inp.timing.model_copy(update={"read_rate_per_second": rate})})
    wid = reconcile_workflow_id("stripe", window.label)
    async with worker_process(h, workdir / f"worker-{n}.log") as proc:
        rss = RssSampler(proc.pid)
        out["worker_ready_seconds"] = await wait_pollers(plain, h.prefix, proc, activity_queues=())
        async with rss.running():
            out["rss_start"] = rss.sample()
            cpu_start = rss.cpu()
            started = time.perf_counter()
            wall_at_start = time.time()
            handle = await h.client.start_workflow(
                ReconcileWorkflow.run, inp, id=wid, task_queue=f"{h.prefix}orders"
            )
            result = await asyncio.wait_for(handle.result(), args.reconcile_max_seconds)
            out["product_seconds"] = time.perf_counter() - started
            out["rss_end"] = rss.sample()
            out["worker_cpu_seconds"] = rss.cpu() - cpu_start
        out["rss_peak"] = max((b for _, b in rss.samples), default=0)
    out["result"] = result.model_dump(mode="json")
    out["runs"] = await run_histories(plain, wid)
    spans: list[tuple[str, float, float]] = []
    out["activity_seconds"] = await activity_split(plain, wid, spans)
    # The worker's RSS peak while each activity type ran (history times on the benchmark's clock).
    to_perf = started - wall_at_start
    peaks: dict[str, int] = {}
    for name, span_start, span_end in spans:
        inside = [b for t, b in rss.samples if span_start + to_perf <= t <= span_end + to_perf]
        peaks[name] = max([peaks.get(name, 0), *inside])
    out["rss_peak_by_activity"] = peaks
    out["rss_samples"] = [(round(t - started, 2), b) for t, b in rss.samples]
    return out


async def activity_split(
    client: Client, workflow_id: str, spans: list[tuple[str, float, float]] | None = None
) -> dict[str, float]:
    """Seconds spent in each activity type (started -> completed, every run of the chain).

    `spans` gets each activity's (type, start, end) in epoch seconds.
    """
    split: dict[str, float] = {}
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        names: dict[int, str] = {}
        started: dict[int, datetime] = {}
        for e in history.events:
            if e.HasField("activity_task_scheduled_event_attributes"):
                names[e.event_id] = e.activity_task_scheduled_event_attributes.activity_type.name
            elif e.HasField("activity_task_started_event_attributes"):
                started[e.activity_task_started_event_attributes.scheduled_event_id] = e.event_time.ToDatetime()
            elif e.HasField("activity_task_completed_event_attributes"):
                sid = e.activity_task_completed_event_attributes.scheduled_event_id
                if sid in started:
                    ended = e.event_time.ToDatetime()
                    took = (ended - started[sid]).total_seconds()
                    split[names[sid]] = split.get(names[sid], 0.0) + took
                    if spans is not None:
                        spans.append((names[sid], _epoch(started[sid]), _epoch(ended)))
        first = history.events[0].workflow_execution_started_event_attributes
        if not first.continued_execution_run_id:
            return {k: round(v, 2) for k, v in sorted(split.items(), key=lambda kv: -kv[1])}
        run_id = first.continued_execution_run_id


def _epoch(naive_utc: datetime) -> float:
    return naive_utc.replace(tzinfo=UTC).timestamp()


def _mib(b: int) -> float:
    return b / (1024 * 1024)


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    sizes = [int(s) for s in str(args.reconcile_sizes).split(",") if s.strip()]
    result = Result(NAME, {"sizes": args.reconcile_sizes, "read_rate_pages_per_s": args.reconcile_read_rate,
                           "page": PAGE, "temporal_db": args.temporal_db})  # fmt: skip
    url = f"sqlite+aiosqlite:///{workdir / 'ticketops.sqlite'}"
    await upgrade(url)
    store = Store(url)
    stripe = StripeServer()
    await stripe.start()
    overrides = {"blobs": BlobConfig(root=str(workdir / "blobs")), "auth": AuthSettings(rate_limit_per_minute=None),
                 "stripe": StripeSettings(base_url=stripe.base_url)}  # fmt: skip
    outcomes: list[dict[str, Any]] = []
    try:
        async with temporal_server(workdir, in_memory=args.temporal_db == "memory") as plain:
            client = Client(plain.service_client, namespace=plain.namespace, data_converter=data_converter(TEST_CODEC))
            prefix = f"r{os.getpid()}-"
            async with running(client, store, workdir, prefix, with_workers=False, settings_overrides=overrides) as h:
                for n in sizes:
                    outcomes.append(await one_size(h, plain, stripe, n, args, workdir, len(outcomes)))
    finally:
        await stripe.stop()
        await store.dispose()

    for o in outcomes:
        tag, n = f"[{o['size']}]", o["size"]
        product = n / o["product_seconds"]
        unpaced = o["raw_unpaced"]["records"] / o["raw_unpaced"]["seconds"]
        paced = o["raw_paced"]["records"] / o["raw_paced"]["seconds"]
        both = o["raw_paced_expanded"]
        result.add(f"{tag} product: refunds reconciled/s", product, "refunds/s",
                   note=f"{o['product_seconds']:.1f}s for {n}, start to the last run's close")  # fmt: skip
        result.add(f"{tag} raw SDK paging refunds, unpaced", unpaced, "refunds/s",
                   note=f"{o['raw_unpaced']['records']} in {o['raw_unpaced']['seconds']:.1f}s")  # fmt: skip
        result.add(f"{tag} raw SDK paging refunds at {args.reconcile_read_rate:g} pages/s", paced, "refunds/s",
                   note=f"{o['raw_paced']['records']} in {o['raw_paced']['seconds']:.1f}s")  # fmt: skip
        result.ratio(f"{tag} product / raw SDK paced", product / paced, target=TARGET,
                     note="the same read limit for both")  # fmt: skip
        result.ratio(f"{tag} product / raw SDK unpaced", product / unpaced)
        result.ratio(f"{tag} product / raw SDK paging refunds expanded, paced",
                     product / (n / both["seconds"]),
                     note=f"{both['records']} refunds with their balance txns inline in {both['seconds']:.1f}s: "
                          "what the product reads")  # fmt: skip
        found = o["result"]["found"]
        result.add(f"{tag} items found (a clean window: 0)", found, "items",
                   note=json.dumps(o["result"]["counts"]))  # fmt: skip
        result.add(f"{tag} worker RSS: start / peak / end", _mib(o["rss_peak"]), "MiB peak",
                   note=f"{_mib(o['rss_start']):.0f} / {_mib(o['rss_peak']):.0f} / {_mib(o['rss_end']):.0f} MiB; "
                        "peak in " + ", ".join(f"{k} {_mib(v):.0f}" for k, v in o["rss_peak_by_activity"].items()))
        result.add(f"{tag} worker CPU per refund", 1000 * o["worker_cpu_seconds"] / n, "ms",
                   note="activity seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in o["activity_seconds"].items()))
        events = [r["events"] for r in o["runs"]]
        result.add(f"{tag} history events per run (max)", max(events), "events",
                   note=f"{len(events)} runs: {', '.join(map(str, events))}; largest payload "
                        f"{max(r['largest_payload'] for r in o['runs']) / 1024:.1f} KiB")  # fmt: skip
    result.details = {"sizes": outcomes}
    return result
