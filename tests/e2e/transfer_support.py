"""Helpers for transfer tests: start a transfer as an agent, read the recipient's link from the offer email."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.harness import Harness
from ticketing.models import Order

LINK = re.compile(r"/transfers/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")
RECIPIENT = {"name": "Grace Hopper", "email": "grace@example.com"}


async def start_transfer(app: Harness, order: Order, index: int = 0, key: str | None = None) -> dict[str, Any]:
    resp = await app.http.post(
        f"/orders/{order.code}/transfers",
        json={"ticket_id": order.tickets[index].id, **RECIPIENT},
        headers={"Idempotency-Key": key or uuid.uuid4().hex, **await app.headers_for("agent-7")},
    )
    assert resp.status_code == 202, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def offer_token(app: Harness, count: int = 1) -> str:
    """The recipient's signed token from the `count`-th message in the sink (the offer)."""
    mail = (await app.sink.wait_for_messages(count))[count - 1]
    assert mail["To"] == RECIPIENT["email"]
    text = mail.get_body(("plain",))
    assert text is not None
    match = LINK.search(text.get_content())
    assert match, "no transfer link in the offer"
    return match.group(1)
