"""`?wait=5s`: answer with the operation's outcome when it ends within that time.

Most actions finish in well under a second, so a client that passes `wait`
skips polling. `GET /operations/{id}` waits in the route; a 202 action route
opts in with `dependencies=[Depends(accepts_wait)]`, and `WaitForOperation`
turns its 202 into a 200 carrying the outcome once the operation has ended.
Waits are capped at 30 s so a request never outlives a proxy's timeout.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import Query, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.service import RPCError

from ticketing.errors import DomainError

MAX_WAIT_SECONDS = 30.0
PATTERN = r"^[0-9]{1,5}(\.[0-9]{1,3})?(ms|s)?$"
_DURATION = re.compile(PATTERN)
_STATE_KEY = "ticketops_wait"


def parse_wait(value: str) -> float:
    """`5s`, `500ms` or `5` (seconds) to seconds, capped at 30; ValueError otherwise."""
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(value)
    number = float(value.removesuffix("ms").removesuffix("s"))
    seconds = number / 1000 if value.endswith("ms") else number
    return min(seconds, MAX_WAIT_SECONDS)


WaitQuery = Annotated[
    str | None,
    Query(
        pattern=PATTERN,
        max_length=12,
        description="Wait up to this long (`5s`, `500ms`; at most 30 s) for the operation to end.",
        examples=["5s"],
    ),
]


async def wait_seconds(wait: WaitQuery = None) -> float | None:
    return parse_wait(wait) if wait is not None else None


async def accepts_wait(request: Request, wait: WaitQuery = None) -> None:
    """Route dependency of 202 actions: validates `wait` and leaves it for `WaitForOperation`."""
    if wait is not None:
        request.scope.setdefault("state", {})[_STATE_KEY] = parse_wait(wait)


class WaitForOperation:
    """Holds back a 202 whose route accepted `wait`, and answers 200 with the outcome if it ends in time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or b"wait=" not in scope.get("query_string", b""):
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            if held or (message["type"] == "http.response.start" and message["status"] == 202):
                held.append(message)
            else:
                await send(message)

        await self.app(scope, receive, hold)
        if not held:
            return
        seconds = scope.get("state", {}).get(_STATE_KEY)
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        finished = await _outcome(scope, body, seconds) if seconds else None
        if finished is None:
            for message in held:
                await send(message)
            return
        payload = json.dumps(finished).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (k, v) for k, v in held[0]["headers"] if k.lower() not in (b"content-length", b"content-type")
                ]
                + [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _outcome(scope: Scope, body: bytes, seconds: float) -> dict[str, Any] | None:
    try:
        accepted = json.loads(body)
        operation_id = accepted["operation_id"]
    except (ValueError, KeyError, TypeError):
        return None
    operations = scope["app"].state.ticketops.operations
    try:
        if not await operations.wait_closed(operation_id, seconds):
            return None
        view = await operations.view(operation_id)
    except (RPCError, DomainError):
        return None  # the 202 is still true; the client polls as it would have without `wait`
    return {**accepted, **view.model_dump(mode="json")}
