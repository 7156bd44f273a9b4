"""import (issue 16): orders through `POST /imports` and the ImportOrders workflow, against the
same file written straight to the store in one transaction (`ticketops orders import --direct`).

N one-ticket orders in a CSV file, sent in 64 KiB chunks as a server reads them off a socket: the
API checks the file as it arrives, row by row into the staging table, and stages its orders, then
the workflow writes them in batches (no delivery). Figures: the request's time, the workflow's
time, and orders per second end to end; the ratio is that rate over the direct import's rate,
measured on a second event of the same store. The process's RSS (API and workers) is sampled
through both phases. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bench.report import Result
from bench.scale import RssSampler, run_histories
from bench.stack import bench_event, product, temporal_server
from ticketing.importing import COLUMNS, parse_file
from ticketing.store.importing import import_orders
from ticketing.store.orders import insert_event

NAME = "import"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("import")
    group.add_argument("--import-orders", type=int, default=5000, help="orders in the file (default 5000)")


def _write_csv(path: Path, event_id: str, type_id: str, count: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        for i in range(count):
            writer.writerow({
                "event_id": event_id, "ticket_type_id": type_id, "quantity": "1", "contact_name": f"Buyer {i}",
                "contact_email": f"buyer{i}@example.com", "contact_mobile": "+31 6 1234 5678",
                "payment_method": "invoice", "status": "paid",
            })
    return path


async def _chunks(path: Path, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """The file as a client streams it (no whole copy in this process)."""
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk


async def run(args: argparse.Namespace, workdir: Path) -> Result:
    count = max(1, args.import_orders)
    result = Result(NAME, {"orders": count, "temporal_db": args.temporal_db})
    async with temporal_server(workdir, in_memory=args.temporal_db == "memory") as client, product(
        client, workdir / "stack"
    ) as stack:
        via_api, ga = bench_event("evt_bench_import_api")
        direct, ga_direct = bench_event("evt_bench_import_direct")
        async with stack.store.transaction() as conn:
            await insert_event(conn, via_api, [ga], [])
            await insert_event(conn, direct, [ga_direct], [])

        upload = _write_csv(workdir / "import-api.csv", via_api.id, ga.id, count)
        rss = RssSampler(os.getpid())  # API and workers share this process (product())
        async with rss.running():
            rss_start = rss.sample()
            begun = time.perf_counter()
            resp = await stack.http.post("/imports", content=_chunks(upload),
                                         headers={"Content-Type": "text/csv", "Idempotency-Key": "bench-import"})
            if resp.status_code != 202:
                raise RuntimeError(f"POST /imports answered {resp.status_code}: {resp.text[:500]}")
            accepted = time.perf_counter()
            rss_accepted = rss.sample()
            await stack.wait_workflows([resp.json()["operation_id"]], timeout=3600)
            done = time.perf_counter()
            rss_end = rss.sample()
        rss_peak = max((b for _, b in rss.samples), default=0)
        rss_peak_request = max((b for t, b in rss.samples if t <= accepted), default=0)
        rss_peak_workflow = max((b for t, b in rss.samples if t > accepted), default=0)
        runs = await run_histories(client, resp.json()["operation_id"])
        state = await stack.get(f"/bulk/{resp.json()['bulk_id']}")
        if state["counts"] != {"imported": count}:
            raise RuntimeError(f"the import ended with {state['counts']}")

        direct_file = _write_csv(workdir / "import-direct.csv", direct.id, ga_direct.id, count)
        started = time.perf_counter()
        await import_orders(stack.store, parse_file(direct_file), source="bench.csv", actor="bench")
        direct_s = time.perf_counter() - started

    total = done - begun
    result.add(f"POST /imports of {count} orders: streamed, checked and staged (request)", accepted - begun, "s")
    result.add("  ImportOrders: written in batches", done - accepted, "s")
    result.add("  end to end", count / total, "orders/s")
    result.add("direct import, one transaction (baseline)", count / direct_s, "orders/s")
    result.ratio("API import rate / direct import rate", (count / total) / (count / direct_s))
    mib = 1024 * 1024
    result.add("process RSS (API + workers): start / peak / end", rss_peak / mib, "MiB peak",
               note=f"{rss_start / mib:.0f} / {rss_peak / mib:.0f} / {rss_end / mib:.0f} MiB")
    result.add("  request: start / peak / end", rss_peak_request / mib, "MiB peak",
               note=f"{rss_start / mib:.0f} / {rss_peak_request / mib:.0f} / {rss_accepted / mib:.0f} MiB")
    result.add("  workflow: start / peak / end", rss_peak_workflow / mib, "MiB peak",
               note=f"{rss_accepted / mib:.0f} / {rss_peak_workflow / mib:.0f} / {rss_end / mib:.0f} MiB")
    events = [r["events"] for r in runs]
    result.add("ImportOrders history: largest run", max(events), "events",
               note=f"{len(events)} runs; largest payload {max(r['largest_payload'] for r in runs) / 1024:.1f} KiB")
    result.details = {"request_s": accepted - begun, "workflow_s": done - accepted, "direct_s": direct_s,
                      "rss_start": rss_start, "rss_peak": rss_peak,
                      "rss_accepted": rss_accepted, "rss_peak_request": rss_peak_request,
                      "rss_peak_workflow": rss_peak_workflow, "rss_end": rss_end, "runs": runs}
    return result
