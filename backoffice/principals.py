"""Who may call the backoffice: an authenticated principal and its role.

API keys themselves (their format, hashing and rows) live in the store,
`ticketing/store/api_keys.py`; this module turns a key into a principal.
"""

from __future__ import annotations

from dataclasses import dataclass

from ticketing.roles import Role
from ticketing.store.api_keys import active_api_key
from ticketing.store.engine import Store


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: its name is the actor recorded in history and workflow memos."""

    name: str
    role: Role
    credential_id: str  # the API key's id or the token's issuer+subject: what rate limits count against


async def principal_for_key(store: Store, key: str) -> Principal | None:
    """The key's principal; None for an unknown, malformed or revoked key."""
    row = await active_api_key(store, key)
    if row is None:
        return None
    return Principal(name=row.name, role=row.role, credential_id=f"key:{row.id}")
