"""`ticketops keys`: a key is printed once, works at once, and stops working when revoked."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa
import typer
from typer.testing import CliRunner, Result

from backoffice.cli.keys import keys_app
from backoffice.principals import principal_for_key
from runtime.settings import get_settings
from ticketing.roles import Role
from ticketing.store.engine import Store
from ticketing.store.tables import api_keys


async def _cli(*args: str) -> Result:
    app = typer.Typer()
    app.add_typer(keys_app, name="keys")
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


@pytest_asyncio.fixture
async def cli_store(sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Store]:
    path = tmp_path / "cli.sqlite"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    monkeypatch.setenv("TICKETOPS_DATABASE_URL", url)
    get_settings.cache_clear()
    store = Store(url)
    yield store
    await store.dispose()
    get_settings.cache_clear()


async def test_create_prints_the_key_once_and_stores_only_its_hash(cli_store: Store) -> None:
    result = await _cli("keys", "create", "--name", "finance-joan", "--role", "finance")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert re.fullmatch(r"tk_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}", key)
    principal = await principal_for_key(cli_store, key)
    assert principal is not None and (principal.name, principal.role) == ("finance-joan", Role.FINANCE)
    async with cli_store.transaction() as conn:
        rows = (await conn.execute(sa.select(api_keys))).all()
    assert len(rows) == 1 and key not in str(tuple(rows[0])) and key.split("_")[2] not in str(tuple(rows[0]))

    listed = await _cli("keys", "list")
    assert "finance-joan" in listed.stdout and "active" in listed.stdout and key not in listed.stdout
    key_id = key.split("_")[1]
    assert (await _cli("keys", "revoke", key_id)).exit_code == 0
    assert await principal_for_key(cli_store, key) is None
    assert "revoked" in (await _cli("keys", "list")).stdout
    again = await _cli("keys", "revoke", key_id)
    assert again.exit_code == 2


async def test_unknown_role_and_empty_name_are_refused(cli_store: Store) -> None:
    assert (await _cli("keys", "create", "--name", "x", "--role", "root")).exit_code == 2
    assert (await _cli("keys", "create", "--name", " ", "--role", "admin")).exit_code == 2
    async with cli_store.transaction() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(api_keys))).scalar() == 0


async def test_a_key_with_the_right_id_but_wrong_secret_is_refused(cli_store: Store) -> None:
    key = (await _cli("keys", "create", "--name", "a", "--role", "admin")).stdout.strip()
    forged = key[:-6] + ("A" * 6 if not key.endswith("A" * 6) else "B" * 6)
    assert await principal_for_key(cli_store, forged) is None
    assert await principal_for_key(cli_store, key.replace("tk_", "tk_0", 1)) is None
    assert await principal_for_key(cli_store, "tk_") is None
