"""`Idempotency-Key`: a repeated request returns the first one's operation.

Same key and same request: the stored response is replayed. Same key, other
request: refused, as Stripe does, because the client has a bug.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from backoffice.api.problems import ProblemError
from ticketing.store.engine import Store
from ticketing.store.tables import api_requests

_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def request_key(request: Request) -> tuple[str, bool]:
    """The client's key, or a fresh one; and whether the client gave it."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return uuid.uuid4().hex, False
    if not _KEY.match(key):
        raise ProblemError(
            400,
            "invalid-idempotency-key",
            "Idempotency-Key must be 1 to 100 characters of letters, digits, '_', '.', ':' or '-'",
        )
    return key, True


def check_idempotency_key(request: Request) -> None:
    """Route dependency: a malformed key is refused before anything else is looked at."""
    request_key(request)


def fingerprint(request: Request, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.url.path} {canonical}".encode()).hexdigest()


async def idempotent(
    store: Store,
    request: Request,
    principal: str,
    body: Any,
    act: Callable[[str], Awaitable[dict[str, Any]]],
) -> JSONResponse:
    """Run `act(key)` once per (principal, key); replay its 202 response afterwards.

    The replay check comes first: a client retrying a request that already
    changed the order gets the first answer, not a refusal caused by its own effect.
    """
    key, given = request_key(request)
    if not given:
        return JSONResponse(await act(key), status_code=202)
    fp = fingerprint(request, body)
    row = await stored_request(store, principal, key)
    if row is not None:
        return replay(row, fp)
    return await remember(store, principal, key, fp, await act(key))


async def stored_request(store: Store, principal: str, key: str) -> Any:
    """The stored first request under (principal, key), or None."""
    async with store.transaction() as conn:
        return (
            await conn.execute(
                sa.select(api_requests).where(
                    api_requests.c.principal == principal, api_requests.c.idempotency_key == key
                )
            )
        ).first()


async def remember(store: Store, principal: str, key: str, fp: str, response: dict[str, Any]) -> JSONResponse:
    """Store the first request's 202 response; if a concurrent twin stored first, replay the twin's."""
    try:
        async with store.transaction() as conn:
            await conn.execute(
                api_requests.insert().values(
                    principal=principal,
                    idempotency_key=key,
                    fingerprint=fp,
                    operation_id=response["operation_id"],
                    response=response,
                    created_at=datetime.now(UTC),
                )
            )
    except IntegrityError:
        return replay(await stored_request(store, principal, key), fp)
    return JSONResponse(response, status_code=202)


def replay(row: Any, fp: str) -> JSONResponse:
    """The stored response again, or a refusal when the key came with another request."""
    if row.fingerprint != fp:
        raise ProblemError(
            422,
            "idempotency-key-reused",
            "this Idempotency-Key was used for a different request",
            operation_id=row.operation_id,
        )
    return JSONResponse(row.response, status_code=202, headers={"Idempotent-Replayed": "true"})
