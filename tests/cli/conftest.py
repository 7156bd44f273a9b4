"""The CLI against the real API: the app served by uvicorn on a loopback port, real workers and Temporal.

The CLI is sync (httpx.Client), so each invocation runs in a thread while the
test's event loop keeps serving the API and running the workers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client
from typer.testing import CliRunner, Result

from backoffice.cli.main import app as ticketops
from tests.builders import make_event, make_order
from tests.harness import Harness, running, seed, serve_http
from ticketing.models import Event, Order
from ticketing.roles import Role
from ticketing.store.engine import Store

AUTO = "auto"  # key=AUTO: a key for (name, role), made in the test store


@dataclass
class Cli:
    h: Harness
    url: str

    async def run(
        self,
        *args: str,
        key: str | None = AUTO,
        role: Role = Role.ADMIN,
        name: str = "agent-cli",
        input: str | None = None,
    ) -> Result:
        """`ticketops *args` with the API url and a key for (name, role) in the environment; key=None sends none."""
        api_key = await self.h.key_for(name, role) if key == AUTO else key
        env = {"TICKETOPS_API_URL": self.url, "TICKETOPS_API_KEY": api_key, "COLUMNS": "220"}
        return await asyncio.to_thread(CliRunner().invoke, ticketops, list(args), env=env, input=input)

    async def order(self, **kw: object) -> tuple[Event, Order]:
        event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
        order = make_order(event, types, **kw)  # type: ignore[arg-type]
        await seed(self.h.store, event, types, slots, [order])
        return event, order


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result.stdout


def refused(result: Result, line: str, code: int = 2) -> None:
    """Exit `code` and a stderr line starting with `line` (workers in this process may log around it)."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert any(x.startswith(line) for x in result.stderr.splitlines()), result.stderr


def lines(text: str, *needles: str) -> Sequence[str]:
    """The output lines that contain every needle (tables wrap whole cells, never a needle across lines)."""
    return [line for line in text.splitlines() if all(n in line for n in needles)]


@pytest_asyncio.fixture
async def cli(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Cli]:
    async with running(temporal_client, store, tmp_path, queue_prefix) as harness, serve_http(
        harness.extra["app"]
    ) as url:
        yield Cli(harness, url)
