"""Delivery racing the actions that invalidate tickets, with the interleaving forced.

The hook runs a real reissue after the delivery activity read the order and before it
claims its message: what goes out must be what was valid at the claim.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client

from activities.contracts import ReissueTickets
from activities.delivery import DeliveryActivities
from activities.reissue import ReissueActivities
from tests.builders import make_event, make_order
from tests.documents.qr import decode_qr_payloads_from_pdf
from tests.harness import Harness, running, seed
from ticketing.store.engine import Store
from ticketing.store.orders import load_history, load_order


@pytest_asyncio.fixture
async def app_any(
    any_store: Store, temporal_client: Client, tmp_path: Path, queue_prefix: str
) -> AsyncIterator[Harness]:
    async with running(temporal_client, any_store, tmp_path, queue_prefix) as harness:
        yield harness


async def test_resend_racing_a_reissue_never_sends_the_dead_ticket(
    app_any: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = app_any
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    order = make_order(event, types, tickets=3)
    await seed(app.store, event, types, slots, [order])
    victim = order.tickets[0]
    real_send_once = DeliveryActivities._send_once
    raced: list[str] = []

    async def reissue_between_read_and_claim(self: DeliveryActivities, **kw: Any) -> Any:
        if not raced:  # the reissue commits after the resend read the order, before its claim
            raced.append("reissued")
            await ReissueActivities(app.deps).reissue_tickets(
                ReissueTickets(
                    order_code=order.code, operation_id="reissue/race", actor="agent", ticket_ids=[victim.id]
                )
            )
        return await real_send_once(self, **kw)

    monkeypatch.setattr(DeliveryActivities, "_send_once", reissue_between_read_and_claim)
    resp = await app.http.post(f"/orders/{order.code}/resend", headers={"Idempotency-Key": "race"})
    assert resp.status_code == 202, resp.text
    done = await app.wait_operation(resp.json()["operation_id"])
    assert raced == ["reissued"]
    assert done["status"] == "completed", done

    async with app.store.read() as conn:
        after = await load_order(conn, order.code)
        history = await load_history(conn, order.code)
    dead = {t.barcode for t in after.tickets if not t.is_valid}
    assert victim.barcode in dead
    sent = {
        code
        for msg in app.sink.messages
        for part in msg.iter_attachments()
        for code in decode_qr_payloads_from_pdf(part.get_content())
    }
    assert sent == {t.barcode for t in order.tickets[1:]}
    assert not sent & dead
    resent = [h for h in history if h.type == "tickets-resent"]
    assert len(resent) == 1 and victim.id not in resent[0].data["tickets"]
