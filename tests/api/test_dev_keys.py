"""`make dev` writes one working key per role, once, and replaces them if the database lost them."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import sqlalchemy as sa

from backoffice.principals import principal_for_key
from devtools.dev_keys import ensure_dev_keys
from ticketing.roles import Role
from ticketing.store.engine import Store
from ticketing.store.tables import api_keys


async def test_keys_are_made_once_per_role(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "var" / "dev-api-keys.json"

    async def ensure() -> bool:
        return await asyncio.to_thread(ensure_dev_keys, store.url, path)  # as `make dev` runs it: own loop

    assert await ensure() is True
    keys = json.loads(path.read_text())
    assert set(keys) == {"support", "finance", "admin"}
    for role, key in keys.items():
        principal = await principal_for_key(store, key)
        assert principal is not None and principal.role == Role(role) and principal.name == f"dev-{role}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert await ensure() is False
    assert json.loads(path.read_text()) == keys

    async with store.transaction() as conn:  # the database was wiped; the file was not
        await conn.execute(sa.delete(api_keys))
    assert await ensure() is True
    fresh = json.loads(path.read_text())
    assert fresh != keys and await principal_for_key(store, fresh["admin"]) is not None
