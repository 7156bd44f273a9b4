"""API keys of backoffice principals, kept hashed in the store.

A key is `tk_<id>_<secret>`: the id finds the row, the secret's sha256 is
compared in constant time, so neither a database dump nor a timing side
channel gives a working key. Keys are shown once, when created.

Here, below the backoffice, so that the API (`backoffice/principals.py`), the
`ticketops keys` commands and the dev stack's keys (`devtools/dev_keys.py`) share
one implementation without `devtools` importing `backoffice`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from ticketing.roles import Role
from ticketing.store.engine import Store
from ticketing.store.tables import api_keys

KEY_PREFIX = "tk_"


@dataclass(frozen=True)
class ApiKeyRow:
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


def hash_secret(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_api_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX)


def _split(key: str) -> str | None:
    """The key's id, or None when it is not shaped like one of ours."""
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or not key_id or not secret or len(key_id) > 32:
        return None
    return key_id


async def create_api_key(store: Store, name: str, role: Role) -> tuple[str, ApiKeyRow]:
    """Store a new key's hash; the plaintext is returned once and never stored."""
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKeyRow(id=key_id, name=name, role=role, created_at=datetime.now(UTC), revoked_at=None)
    async with store.transaction() as conn:
        await conn.execute(
            api_keys.insert().values(
                id=row.id, name=name, role=role.value, key_hash=hash_secret(key), created_at=row.created_at
            )
        )
    return key, row


async def active_api_key(store: Store, key: str) -> ApiKeyRow | None:
    """The key's row; None for an unknown, malformed or revoked key."""
    key_id = _split(key)
    if key_id is None:
        return None
    async with store.transaction() as conn:
        row = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))).first()
    if row is None or not hmac.compare_digest(row.key_hash, hash_secret(key)):
        return None
    if row.revoked_at is not None:
        return None
    return ApiKeyRow(id=row.id, name=row.name, role=Role(row.role), created_at=row.created_at, revoked_at=None)


async def revoke_api_key(store: Store, key_id: str) -> bool:
    async with store.transaction() as conn:
        result = await conn.execute(
            api_keys.update()
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return bool(result.rowcount)


async def list_api_keys(store: Store) -> list[ApiKeyRow]:
    async with store.transaction() as conn:
        rows = (await conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at))).all()
    return [
        ApiKeyRow(id=r.id, name=r.name, role=Role(r.role), created_at=r.created_at, revoked_at=r.revoked_at)
        for r in rows
    ]
