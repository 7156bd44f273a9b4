"""`python -m bench [names...]`: run benchmarks, print figures and ratios, write var/bench/<name>.json.

Each benchmark starts its own Temporal dev server (loopback, a SQLite file unless
`--temporal-db memory`) and its own copy of the product, measures the product and
its baseline in the same run, and prints ratios; nothing is asserted. The process
ends with `os._exit` because the temporalio core can crash at interpreter exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType

from bench import (
    bulk_delivery,
    event_cancellation,
    import_orders,
    pdf,
    reconcile,
    refund,
    reissue,
    resend,
    scale,
    search,
    stack,
)
from bench.report import OUT_DIR, Result
from runtime.logging import configure_logging

BENCHMARKS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        resend, refund, pdf, reissue, bulk_delivery, event_cancellation, scale, search, reconcile, import_orders
    )
}
Runner = Callable[[argparse.Namespace, Path], Awaitable[Result]]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="ticketops benchmarks: figures and ratios against a baseline measured in the same run",
    )
    p.add_argument(
        "names", nargs="*", metavar="name", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})"
    )
    p.add_argument(
        "--temporal-db",
        choices=("file", "memory"),
        default="file",
        help="the dev server's history store: a SQLite file as `ticketops dev` runs it (default), or memory",
    )
    p.add_argument(
        "--store",
        choices=("sqlite", "postgres", "both"),
        default="sqlite",
        help="the product's database: SQLite in the work folder (default), or a fresh PostgreSQL database "
        "on TICKETOPS_BENCH_PG (default postgresql://postgres@127.0.0.1:5432/postgres); both: each benchmark on "
        "SQLite then on PostgreSQL, and every ratio of the second over the first (var/bench/<name>-stores.json)",
    )
    p.add_argument(
        "--temporal-dynamic-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dynamic config value for the dev server (repeatable), e.g. history.transferProcessorMaxPollRPS=1000: "
        "the dev server has one history shard, whose transfer-task reader polls at most 20 times a second (a "
        "production cluster has hundreds of shards), which alone puts ~30 ms before each task a workflow schedules "
        "once a few workflows a second run",
    )
    p.add_argument("--verbose", action="store_true", help="show the product's INFO logs")
    p.add_argument("--keep", action="store_true", help="keep the work folders (stores, .eml files) under var/bench/")
    for module in BENCHMARKS.values():
        module.add_arguments(p)
    return p


@contextlib.contextmanager
def _workdir(name: str, *, keep: bool) -> Iterator[Path]:
    if keep:
        path = OUT_DIR / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}"
        path.mkdir(parents=True)
        print(f"   work folder kept: {path}", flush=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        yield Path(tmp)


STORE_TARGET = 0.9  # issue 14: PostgreSQL's ratios at least 0.9 of the same run's SQLite ratios


def stores(arg: str) -> list[str]:
    return ["sqlite", "postgres"] if arg == "both" else [arg]


async def run_one(args: argparse.Namespace, name: str, store: str) -> Result | None:
    module = BENCHMARKS[name]
    stack.STORE_KIND = store
    stack.DYNAMIC_CONFIG = list(args.temporal_dynamic_config)
    started = time.perf_counter()
    print(f"-- {name} ({store}): running ...", flush=True)
    with _workdir(name, keep=args.keep) as workdir:
        try:
            result: Result = await module.run(args, workdir)
        except Exception:
            traceback.print_exc()
            print(f"-- {name}: FAILED after {time.perf_counter() - started:.1f}s", flush=True)
            return None
    result.details["wall_seconds"] = round(time.perf_counter() - started, 2)
    result.params["store"] = store
    if args.temporal_dynamic_config:
        result.params["temporal_dynamic_config"] = ", ".join(args.temporal_dynamic_config)
    if store != "sqlite":
        result.name = f"{result.name}-{store}"  # its own var/bench/<name>-postgres.json
    path = result.write()
    print(result.table())
    print(f"-- {name}: {result.details['wall_seconds']:.1f}s, written to {path}\n", flush=True)
    return result


def compare_stores(name: str, sqlite: Result, postgres: Result) -> Result:
    """`--store both`: each ratio PostgreSQL measured over the one SQLite measured just before it."""
    params = {k: v for k, v in sqlite.params.items() if k != "store"} | {"stores": "sqlite, then postgres"}
    result = Result(f"{name}-stores", params)
    theirs = {f.name: f for f in postgres.figures if f.ratio}
    for mine in (f for f in sqlite.figures if f.ratio and f.name in theirs):
        pg = theirs[mine.name].value
        result.add(f"{mine.name}: sqlite", mine.value, "x")
        result.add(f"{mine.name}: postgres", pg, "x")
        target = STORE_TARGET if mine.target is not None else None
        result.ratio(f"{mine.name}: postgres / sqlite", pg / mine.value if mine.value else float("nan"), target=target)
    result.details = {"sqlite": sqlite.params, "postgres": postgres.params}
    return result


async def run_all(args: argparse.Namespace, names: list[str]) -> int:
    failures = 0
    for name in names:
        results = {store: await run_one(args, name, store) for store in stores(args.store)}
        failures += sum(1 for r in results.values() if r is None)
        sqlite, postgres = results.get("sqlite"), results.get("postgres")
        if len(results) == 2 and sqlite is not None and postgres is not None:
            both = compare_stores(name, sqlite, postgres)
            path = both.write()
            print(both.table())
            print(f"-- {name}: both stores compared, written to {path}\n", flush=True)
    return 1 if failures else 0


def main() -> None:
    args = parser().parse_args()
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        os._exit(2)
    configure_logging(level="INFO" if args.verbose else "WARNING")
    code = 1
    try:
        code = asyncio.run(run_all(args, names))
    except KeyboardInterrupt:
        code = 130
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
