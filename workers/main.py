"""`ticketops worker`: run the configured queues' workers until SIGINT/SIGTERM, then drain and leave.

On SIGTERM the workers stop polling, give running activities `worker.graceful_shutdown_seconds`
to finish, then cancel the rest (which Temporal retries on another worker). SDK metrics are
served on `worker.metrics_port` through the Temporal runtime's Prometheus exporter.

The temporalio core can crash at interpreter exit after correct work, so the
process ends with `os._exit` once the workers are shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal

import structlog

from activities.deps import Deps
from email_providers.factory import make_provider
from email_providers.from_settings import email_settings
from payment_adapters.registry import payment_adapters
from runtime.logging import configure_logging
from runtime.settings import Settings, get_settings
from runtime.telemetry import configure_tracing, temporal_runtime, tracing_interceptors
from runtime.temporal import connect, ensure_search_attributes
from ticketing.store.engine import Store
from ticketing.store.migrate import upgrade
from workers.build import build_workers
from workflows import search_attributes

log = structlog.get_logger(__name__)


async def build_deps(settings: Settings) -> Deps:
    store = Store(settings.database_url)
    return Deps(
        settings=settings,
        store=store,
        email=make_provider(email_settings(settings.email)),
        payments=payment_adapters(settings),
    )


def settle_heap() -> None:
    """Take what start-up built (modules, the SDK, templates: about 250,000 objects) out of the cyclic
    collector's full scans, which otherwise stop the event loop for about 170 ms each time, in the
    middle of a bulk send. They live as long as the process, so nothing is lost."""
    gc.collect()
    gc.freeze()


async def run(settings: Settings, stop: asyncio.Event) -> None:
    if settings.worker.migrate_on_start:
        await upgrade(settings.database_url)
    tracer_provider = configure_tracing(settings.tracing)
    client = await connect(
        settings.temporal,
        codec=settings.codec,
        runtime=temporal_runtime(settings.worker.metrics_port),
        interceptors=tracing_interceptors(settings.tracing),
    )
    if settings.temporal.register_search_attributes:
        await ensure_search_attributes(client, search_attributes.ALL)
    deps = await build_deps(settings)
    workers = build_workers(client, deps, prefix=settings.temporal.queue_prefix, queues=settings.worker.queues)
    settle_heap()
    tasks = [asyncio.create_task(w.run()) for w in workers]
    log.info("worker.started", queues=[w.task_queue for w in workers])
    await stop.wait()
    log.info("worker.stopping")
    await asyncio.gather(*(w.shutdown() for w in workers))
    for task in tasks:
        with contextlib.suppress(Exception):
            await task
    await deps.email.close()
    if deps.pdfs is not None:
        await asyncio.to_thread(deps.pdfs.close)
    await deps.store.dispose()
    if tracer_provider is not None:
        tracer_provider.shutdown()  # flushes spans before os._exit


def main() -> None:
    settings = get_settings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    code = 0

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    try:
        asyncio.run(_main())
    except Exception:
        log.exception("worker.crashed")
        code = 1
    os._exit(code)


if __name__ == "__main__":
    main()
