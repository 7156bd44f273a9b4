"""The whole path: refunds on the Stripe stand-in, the real `Reconcile` run, its report and finance's email.

A refund made through ticketops agrees on both sides; a Dashboard refund on
another order is ours to confirm (missing in the ledger). The run ends by
writing the CSV and JSON to blob storage and emailing finance; a re-run of the
window writes the same report.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest_asyncio
from temporalio.client import Client

from backoffice.schedules import reconcile_input
from devtools.stripe_server.server import StripeServer
from runtime.settings import BlobConfig
from tests.e2e.refund_support import card_order, request_refund
from tests.harness import Harness, running
from ticketing.models import Processor
from ticketing.reconciliation import DiscrepancyClass, Severity
from ticketing.reconciliation.totals import totals_key
from ticketing.reconciliation_records import ReconWindow
from ticketing.reconciliation_report import report_keys
from ticketing.store import reconciliation as rs
from ticketing.store.engine import Store
from workflows.reconcile import ReconcileWorkflow
from workflows.reconcile_contracts import reconcile_workflow_id


@pytest_asyncio.fixture
async def stack(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str
) -> AsyncIterator[tuple[Harness, StripeServer]]:
    stripe = StripeServer()
    await stripe.start()
    overrides = {"blobs": BlobConfig(root=str(tmp_path / "blobs"))}
    try:
        async with running(
            temporal_client, store, tmp_path, queue_prefix, stripe=stripe, webhooks=True, settings_overrides=overrides
        ) as h:
            yield h, stripe
    finally:
        await stripe.stop()


async def _reconcile(h: Harness, window: ReconWindow) -> dict[str, object]:
    run_id = reconcile_workflow_id("stripe", window.label)
    handle = await h.client.start_workflow(
        ReconcileWorkflow.run,
        reconcile_input(h.settings, Processor.STRIPE, window, actor="test"),
        id=f"{run_id}/{datetime.now(UTC).timestamp()}",
        task_queue=f"{h.prefix}orders",
    )
    result = await handle.result()
    return result.model_dump(mode="json")


async def test_run_writes_its_report_and_emails_finance(stack: tuple[Harness, StripeServer]) -> None:
    h, stripe = stack
    ours = await card_order(h, stripe)
    accepted = await request_refund(h, ours.code, {"kind": "full", "reason": "cannot come"})
    done = await h.wait_operation(accepted["operation_id"])
    assert done["status"] == "completed", done
    other = await card_order(h, stripe)
    dashboard = stripe.dashboard_refund(str(other.payment.reference), amount=1500)
    now = datetime.now(UTC)
    window = ReconWindow(start=now - timedelta(hours=1), end=now + timedelta(seconds=5))

    result = await _reconcile(h, window)
    assert result["status"] == "completed"

    csv_key, json_key = report_keys(reconcile_workflow_id("stripe", window.label))
    blobs = h.deps.blob_store()
    rows = list(csv.DictReader(io.StringIO((await blobs.get(csv_key)).decode())))
    external = [r for r in rows if r["processor_refund_id"] == dashboard["id"]]
    assert [(r["class"], r["state"], r["processor_amount"]) for r in external] == [
        ("missing-in-ledger", "open", "15.00")
    ]
    assert not [r for r in rows if r["order_code"] == ours.code and r["state"] == "open"]  # ours agrees
    summary = json.loads(await blobs.get(json_key))
    assert summary["by_class"].get("missing-in-ledger") == 1
    eur = next(t for t in summary["totals"] if t["currency"] == "EUR")
    assert eur["processor"] - eur["ledger"] == eur["difference"]
    assert summary["open_items"] >= 1

    finance = [m for m in h.sink.messages if str(m["Subject"]).startswith("Reconciliation stripe")]
    assert len(finance) == 1
    assert finance[0]["To"] == h.settings.email.finance_address

    # The same window again: the same report.
    before = await blobs.get(csv_key)
    again = await _reconcile(h, window)
    assert again["status"] == "completed"
    assert await blobs.get(csv_key) == before


async def test_money_back_on_a_refund_that_stayed_paid_is_one_totals_item(stack: tuple[Harness, StripeServer]) -> None:
    """The stand-in credits back a refund that still succeeded: each refund agrees, the window's money does not."""
    h, stripe = stack
    order = await card_order(h, stripe)
    accepted = await request_refund(h, order.code, {"kind": "full", "reason": "cannot come"})
    assert (await h.wait_operation(accepted["operation_id"]))["status"] == "completed"
    (refund,) = [r for r in stripe.refunds() if r["payment_intent"] == order.payment.reference]
    stray = stripe.stray_balance_transaction(refund["id"])
    now = datetime.now(UTC)
    window = ReconWindow(start=now - timedelta(hours=1), end=now + timedelta(seconds=5))
    run_id = reconcile_workflow_id("stripe", window.label)

    for _ in range(2):  # a re-run of the window finds the same item, not a second one
        assert (await _reconcile(h, window))["status"] == "completed"
        async with h.store.read() as conn:
            items = await rs.list_items(conn, run_id=run_id)
        assert [(i.cls, i.key, i.severity) for i in items] == [
            (DiscrepancyClass.MONEY_MOVEMENT, totals_key(window, "EUR"), Severity.HIGH)
        ]
        side = items[0].processor_side or {}
        assert (side["difference"], side["explained"], side["unexplained"]) == (
            -stray["amount"], 0, -stray["amount"]
        )
        assert side["processor_total"] == 0 and side["ledger_total"] == refund["amount"]
