"""Bring a database to the newest schema with Alembic, from code or the CLI."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade_sync(url: str) -> None:
    """Run in a thread of its own: Alembic's env starts an event loop, which a caller may have."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, alembic_config(url), "head").result()


async def upgrade(url: str) -> None:
    """Alembic's env runs its own event loop, so run it off this one."""
    await asyncio.to_thread(upgrade_sync, url)
