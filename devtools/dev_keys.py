"""One API key per role for a development machine, in `var/dev-api-keys.json` as `{role: key}`.

Made once, after the schema upgrade; kept while they still work, made again
when the database was wiped under them. The file is readable by its owner only.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from ticketing.roles import Role
from ticketing.store.api_keys import active_api_key, create_api_key
from ticketing.store.engine import Store


async def _still_valid(store: Store, keys: object) -> bool:
    if not isinstance(keys, dict) or set(keys) != {r.value for r in Role}:
        return False
    for role, key in keys.items():
        row = await active_api_key(store, str(key))
        if row is None or row.role.value != role:
            return False
    return True


async def new_keys_unless_valid(store: Store, current: object) -> dict[str, str] | None:
    """New keys, one per role; None when `current` (the file's content) still works."""
    if await _still_valid(store, current):
        return None
    return {role.value: (await create_api_key(store, f"dev-{role.value}", role))[0] for role in Role}


def ensure_dev_keys(database_url: str, path: Path) -> bool:
    """True when new keys were made and written to `path`."""
    try:
        current: object = json.loads(path.read_text())
    except (OSError, ValueError):
        current = None

    async def main() -> dict[str, str] | None:
        store = Store(database_url)
        try:
            return await new_keys_unless_valid(store, current)
        finally:
            await store.dispose()

    keys = asyncio.run(main())
    if keys is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(keys, out, indent=2)
    return True
