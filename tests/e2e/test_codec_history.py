"""What the Temporal server stores is ciphertext; staff read it through the API's codec endpoint.

The principal's name is an email address here (as OIDC subjects often are), so
it travels in the workflow input, the memo and activity inputs: the history
would hold it in plaintext without the codec.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent

from runtime.codec import ENCODING, PUBLIC
from tests.builders import make_event, make_order
from tests.harness import Harness, seed

AGENT = "clara.agent@backoffice.example"


def _payloads(message: Message) -> list[Payload]:
    found: list[Payload] = []
    for _field, value in message.ListFields():
        items = value if isinstance(value, list | tuple) or hasattr(value, "append") else [value]
        if hasattr(value, "values") and callable(value.values):  # protobuf map fields
            items = list(value.values())
        for item in items:
            if isinstance(item, Payload):
                found.append(item)
            elif isinstance(item, Message):
                found.extend(_payloads(item))
    return found


CORE_MARKER_KEYS = {
    "id", "deprecated",  # core_patch
    "seq", "attempt", "activity_id", "activity_type", "complete_time", "backoff", "original_schedule_time",
    "activation_index",  # core_local_activity
}  # fmt: skip


def _core_marker_bookkeeping(events: Iterable[HistoryEvent]) -> list[Payload]:
    found: list[Payload] = []
    for event in events:
        if event.HasField("marker_recorded_event_attributes"):
            marker = event.marker_recorded_event_attributes
            key = {"core_patch": "patch-data", "core_local_activity": "data"}.get(marker.marker_name)
            if key is not None and key in marker.details:
                found.extend(marker.details[key].payloads)
    return found


async def test_resend_history_holds_no_plaintext_personal_data(app: Harness) -> None:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    order = make_order(event, types, tickets=1)
    await seed(app.store, event, types, slots, [order])
    resp = await app.http.post(f"/orders/{order.code}/resend?wait=10s", headers=await app.headers_for(AGENT))
    assert resp.status_code == 200 and resp.json()["status"] == "completed", resp.text

    history = await app.client.get_workflow_handle(resp.json()["operation_id"]).fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    desc = await app.client.get_workflow_handle(resp.json()["operation_id"]).describe()
    raw += desc.raw_description.SerializeToString()
    for personal in (AGENT, order.contact.email, order.contact.name):
        assert personal and personal.encode() not in raw, personal
    # The SDK core's own marker bookkeeping (a patch's id; a local activity's attempt and times) is
    # plain JSON it writes itself, outside the data converter; it holds none of our data.
    bookkeeping = _core_marker_bookkeeping(history.events)
    assert {p.metadata["encoding"] for p in bookkeeping} == {b"json/plain"}
    assert {key for p in bookkeeping for key in json.loads(p.data)} <= CORE_MARKER_KEYS
    # Search attribute values (ids, statuses) and the summary stay readable; everything else is sealed,
    # the local activity's result (the plan) included.
    stored = [
        p for event in history.events for p in _payloads(event) if "type" not in p.metadata and p not in bookkeeping
    ]
    public = [p for p in stored if PUBLIC in p.metadata]
    assert [p.data for p in public] == [f'"Resend 1 ticket(s) of order {order.code}"'.encode()]
    sealed = [p for p in stored if PUBLIC not in p.metadata]
    assert sealed and all(p.metadata["encoding"] == ENCODING for p in sealed)

    # What the Web UI does for staff: post the stored payloads to the codec endpoint.
    body = {
        "payloads": [
            {"metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
             "data": base64.b64encode(p.data).decode()}
            for p in sealed
        ]
    }
    decoded = await app.http.post("/codec/decode", json=body, headers=await app.headers_for("agent-2", "support"))
    assert decoded.status_code == 200, decoded.text
    plain = b"".join(base64.b64decode(p["data"]) for p in decoded.json()["payloads"])
    assert AGENT.encode() in plain and order.code.encode() in plain
    assert await desc.memo_value("actor") == AGENT
