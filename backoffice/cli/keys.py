"""`ticketops keys create|list|revoke`: API keys for backoffice principals.

A new key is printed once, on stdout alone, so `KEY=$(ticketops keys create ...)`
works; only its hash is stored, so a lost key is revoked and replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from runtime.settings import get_settings
from ticketing.roles import Role
from ticketing.store.api_keys import create_api_key, list_api_keys, revoke_api_key
from ticketing.store.engine import Store
from ticketing.store.migrate import upgrade

T = TypeVar("T")

keys_app = typer.Typer(no_args_is_help=True, add_completion=False, help="API keys of backoffice principals.")


def _with_store(work: Callable[[Store], Awaitable[T]]) -> T:
    url = get_settings().database_url

    async def main() -> T:
        await upgrade(url)
        store = Store(url)
        try:
            return await work(store)
        finally:
            await store.dispose()

    return asyncio.run(main())


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="The principal: recorded as the actor of everything it does.")],
    role: Annotated[Role, typer.Option(help="support, finance or admin.")],
) -> None:
    """Create a key and print it once."""
    if not name.strip() or len(name) > 200:
        raise typer.BadParameter("the name must be 1 to 200 characters", param_hint="--name")
    key, row = _with_store(lambda store: create_api_key(store, name.strip(), role))
    typer.echo(f"created key {row.id} for {row.name} ({row.role.value}); it is shown only now:", err=True)
    typer.echo(key)


@keys_app.command("list")
def list_keys() -> None:
    """Every key's id, principal, role and state (never the key)."""
    for row in _with_store(list_api_keys):
        state = f"revoked {row.revoked_at.isoformat()}" if row.revoked_at else "active"
        typer.echo(f"{row.id}  {row.role.value:<8} {row.name}  created {row.created_at.isoformat()}  {state}")


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id, as `keys list` shows it.")]) -> None:
    """Revoke a key at once; requests with it are refused from now on."""
    if not _with_store(lambda store: revoke_api_key(store, key_id)):
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(2)
    typer.echo(f"revoked {key_id}")
