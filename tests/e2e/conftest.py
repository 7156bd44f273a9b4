from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client

from tests.harness import Harness, running
from ticketing.store.engine import Store


@pytest_asyncio.fixture
async def app(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    async with running(temporal_client, store, tmp_path, queue_prefix) as harness:
        yield harness
