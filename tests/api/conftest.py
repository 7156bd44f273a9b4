from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client

from tests.api.identity import IdentityProvider
from tests.harness import Harness, running
from ticketing.store.engine import Store


@pytest.fixture
def idp(tmp_path: Path) -> IdentityProvider:
    return IdentityProvider(tmp_path / "jwks.json")


@pytest_asyncio.fixture
async def api(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, idp: IdentityProvider
) -> AsyncIterator[Harness]:
    """The API without workers, accepting API keys and the stand-in provider's tokens."""
    async with running(
        temporal_client, store, tmp_path, queue_prefix, with_workers=False, settings_overrides={"auth": idp.settings()}
    ) as harness:
        yield harness
