"""What finance sees of refunds in the Web UI: every run names its order and amount, in plaintext.

The summary and the current details carry no personal data, so they are stored
unencrypted and every UI user reads them; the contact's email stays sealed. A
refund that fails after it succeeded is reopened by a follow-up run, which
names the original run and shows in the refund-error list.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.query.v1 import WorkflowQuery
from temporalio.api.workflowservice.v1 import QueryWorkflowRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from runtime.codec import ENCODING, PUBLIC
from runtime.settings import RefundConfig
from tests.e2e.refund_support import card_order, request_refund
from tests.harness import Harness, running
from ticketing.refunds import late_failure_workflow_id
from ticketing.store.engine import Store


@pytest_asyncio.fixture
async def stripe() -> AsyncIterator[StripeServer]:
    server = StripeServer(StripeServerConfig())
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def app(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str, stripe: StripeServer
) -> AsyncIterator[Harness]:
    async with running(
        temporal_client, store, tmp_path, queue_prefix, stripe=stripe, webhooks=True,
        settings_overrides={"refunds": RefundConfig(poll_initial_seconds=0.5, poll_max_seconds=1.0)},
    ) as harness:
        yield harness


def _payloads(message: Message) -> list[Payload]:
    found: list[Payload] = []
    for _field, value in message.ListFields():
        items = list(value.values()) if hasattr(value, "values") and callable(value.values) else (
            value if hasattr(value, "append") else [value]
        )
        for item in items:
            if isinstance(item, Payload):
                found.append(item)
            elif isinstance(item, Message):
                found.extend(_payloads(item))
    return found


async def _attrs(handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
    desc = await handle.describe()
    return {pair.key.name: pair.value for pair in desc.typed_search_attributes.search_attributes}


async def _raw_metadata_query(client: Client, workflow_id: str) -> Payload:
    """The `__temporal_workflow_metadata` answer as the server hands it to the UI: no codec."""
    resp = await client.workflow_service.query_workflow(
        QueryWorkflowRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=workflow_id),
            query=WorkflowQuery(query_type="__temporal_workflow_metadata"),
        )
    )
    [payload] = resp.query_result.payloads
    return payload


async def test_every_refund_run_names_order_and_amount_in_plaintext(app: Harness, stripe: StripeServer) -> None:
    order = await card_order(app, stripe, card="pm_card_visa", tickets=2)
    started = await request_refund(app, order.code, {"kind": "full", "reason": "event moved"})
    original = app.client.get_workflow_handle(started["operation_id"])
    summary = f"Refund EUR 70.00 on order {order.code} (2 tickets, full)"
    assert await (await original.describe()).static_summary() == summary
    done = await original.result()
    assert done["status"] == "refunded"

    # Stripe fails the refund after the run has ended: a follow-up run reopens it.
    [processor_refund] = [r for r in stripe.refunds() if r.get("payment_intent") == order.payment.reference]
    stripe.force_refund_failure(processor_refund["id"], reason="lost_or_stolen_card")
    follow_up = app.client.get_workflow_handle(late_failure_workflow_id(started["refund_id"], 1))
    for _ in range(200):
        try:
            if (await _attrs(follow_up)).get("RefundStatus") == "refund-error":
                break
        except RPCError:  # not started yet
            pass
        await asyncio.sleep(0.1)
    desc = await follow_up.describe()
    assert await desc.static_summary() == f"{summary}: failed after it succeeded; reopens {started['operation_id']}"
    attrs = await _attrs(follow_up)
    assert attrs["RefundStatus"] == "refund-error" and attrs["RefundFailure"] == "lost_or_stolen_card"
    assert attrs["OrderId"] == order.code and attrs["EventId"] == order.event_id
    assert attrs["RefundAmount"] == 7000 and attrs["RefundCurrency"] == "EUR"
    assert (await _attrs(original))["RefundStatus"] == "refunded"  # closed runs cannot change

    # One filter shows finance what to act on: the follow-up, named by order and amount.
    query = f'RefundStatus="refund-error" AND OrderId="{order.code}"'
    for _ in range(100):
        listed = [w async for w in app.client.list_workflows(query)]
        if listed:
            break
        await asyncio.sleep(0.1)
    assert [w.id for w in listed] == [follow_up.id]

    # Stored as the UI reads it, without the codec: the summary and current details are
    # plaintext, the contact's email is nowhere, everything else is sealed.
    for _ in range(100):  # the run emails finance before it waits
        details = await _raw_metadata_query(app.client, follow_up.id)
        if b"waiting for finance" in details.data:
            break
        await asyncio.sleep(0.1)
    assert details.metadata[PUBLIC] == b"1" and b"waiting for finance" in details.data
    for handle in (original, follow_up):
        history = await handle.fetch_history()
        raw = b"".join(e.SerializeToString() for e in history.events)
        raw += (await handle.describe()).raw_description.SerializeToString()
        assert order.code.encode() in raw and b"Refund EUR 70.00" in raw
        for personal in (order.contact.email, order.contact.name):
            assert personal and personal.encode() not in raw, personal
        # Patch markers (`workflow.patched`) are written by the SDK's core, not through the codec: ids only.
        events = [
            e for e in history.events
            if not (e.HasField("marker_recorded_event_attributes")
                    and e.marker_recorded_event_attributes.marker_name == "core_patch")
        ]
        stored = [p for e in events for p in _payloads(e) if "type" not in p.metadata]
        public = [p for p in stored if PUBLIC in p.metadata]
        assert [p.data.decode() for p in public][:1] == [f'"{await (await handle.describe()).static_summary()}"']
        plain = [p for p in stored if PUBLIC not in p.metadata and p.metadata["encoding"] != ENCODING]
        assert not plain, plain
