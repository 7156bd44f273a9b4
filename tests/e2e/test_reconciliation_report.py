"""The run report (CSV + JSON in blob storage), finance's email, and the read and queue routes.

Runs and items are written with the store's own functions (as the workflow's
activities write them); the report activity runs for real against the SQLite
store, the local blob folder and the SMTP sink; the routes are the real app.
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

from activities.reconciliation_report import ReconciliationReportActivities, ReconReportRequest
from backoffice.principals import Role
from runtime.settings import BlobConfig
from tests.harness import Harness, running
from ticketing.reconciliation.items import DiscrepancyClass, ItemState, SuggestedAction, item_id
from ticketing.reconciliation.models import Finding
from ticketing.reconciliation_records import ReconWindow
from ticketing.reconciliation_report import CSV_COLUMNS, report_keys
from ticketing.store.engine import Store
from ticketing.store.reconciliation import begin_run, mark_healed, record_findings, update_run
from workflows.reconcile_contracts import reconcile_workflow_id

PROBLEM = "https://ticketops.dev/problems/"
WINDOW = ReconWindow(start=datetime(2026, 12, 1, tzinfo=UTC), end=datetime(2026, 12, 2, tzinfo=UTC))
RUN_ID = reconcile_workflow_id("stripe", WINDOW.label)
NOW = datetime(2026, 12, 3, 4, 30, tzinfo=UTC)

FINDINGS = [
    Finding(
        cls=DiscrepancyClass.STATUS_MISMATCH,
        key="rf_lost",
        action=SuggestedAction.START_LATE_FAILURE,
        ledger={"status": "refunded", "amount": 3900, "currency": "EUR"},
        processor={"status": "failed", "amount": 3900, "currency": "EUR", "failure_reason": "expired_or_canceled_card"},
        refund_id="rf_lost",
        processor_refund_id="re_lost",
        order_code="3QNY9PJS",
        amount=3900,
        currency="EUR",
    ),
    Finding(
        cls=DiscrepancyClass.DUPLICATE_AT_PROCESSOR,
        key="rf_twice",
        action=SuggestedAction.RECOVER_DUPLICATE,
        ledger={"status": "refunded", "amount": 7000, "currency": "EUR"},
        processor={"status": "succeeded", "amount": 7000, "currency": "EUR"},
        refund_id="rf_twice",
        processor_refund_id="re_twice_2",
        order_code="A1B2C3D4",
        amount=7000,
        currency="EUR",
    ),
    Finding(
        cls=DiscrepancyClass.FOREIGN,
        key="re_other",
        action=SuggestedAction.NONE,
        processor={"status": "succeeded", "amount": 1250, "currency": "USD"},
        processor_refund_id="re_other",
        amount=1250,
        currency="USD",
    ),
]
TOTALS = {"EUR": {"processor": 10900, "ledger": 14800, "difference": -3900}, "USD": {"processor": 1250, "ledger": 0}}


@pytest_asyncio.fixture
async def h(temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str) -> AsyncIterator[Harness]:
    overrides = {"blobs": BlobConfig(root=str(tmp_path / "blobs"))}
    async with running(
        temporal_client, store, tmp_path, queue_prefix, with_workers=False, settings_overrides=overrides
    ) as harness:
        yield harness


async def _seed_run(store: Store, findings: list[Finding] = FINDINGS) -> None:
    async with store.transaction() as conn:
        pass_no = await begin_run(conn, run_id=RUN_ID, processor="stripe", window=WINDOW, dry_run=False, now=NOW)
        await record_findings(conn, processor="stripe", run_id=RUN_ID, pass_no=pass_no, findings=findings, now=NOW)
        await update_run(
            conn, RUN_ID, now=NOW, status="completed", totals=TOTALS, staged={"refund": 5, "balance": 4, "event": 0},
            counts={"status-mismatch": 1, "duplicate-at-processor": 1, "foreign": 1}, healed=1, open_items=3,
            ended_at=NOW + timedelta(minutes=2),
        )


async def test_report_csv_and_json_in_blob_storage_and_email_to_finance(h: Harness) -> None:
    await _seed_run(h.store)
    async with h.store.transaction() as conn:  # the run started the lost failure's follow-up run
        await mark_healed(conn, [item_id("stripe", DiscrepancyClass.STATUS_MISMATCH, "rf_lost")], run_id=RUN_ID,
                          now=NOW)
    acts = ReconciliationReportActivities(h.deps)
    outcome = await acts.write_reconciliation_report(ReconReportRequest(run_id=RUN_ID))
    assert (outcome.items, outcome.open_items) == (3, 2)  # a foreign refund is counted, never queued
    blobs = h.deps.blob_store()
    csv_key, json_key = report_keys(RUN_ID)
    assert csv_key == "reconciliation/reconcile_stripe_2026-12-01T0000Z..2026-12-02T0000Z.csv"
    assert outcome.csv_uri.startswith("file://") and outcome.csv_uri.endswith(csv_key)
    rows = list(csv.DictReader(io.StringIO((await blobs.get(csv_key)).decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    # Most severe first: the money paid twice, then the lost failure, then the foreign refund.
    assert [(r["class"], r["severity"], r["state"], r["healed"]) for r in rows] == [
        ("duplicate-at-processor", "critical", "open", ""),
        ("status-mismatch", "high", "open", "yes"),
        ("foreign", "info", "resolved", ""),
    ]
    lost = rows[1]
    assert lost["order_code"] == "3QNY9PJS"
    assert (lost["ledger_refund_id"], lost["processor_refund_id"]) == ("rf_lost", "re_lost")
    assert (lost["ledger_amount"], lost["ledger_currency"], lost["ledger_status"]) == ("39.00", "EUR", "refunded")
    assert (lost["processor_amount"], lost["processor_status"]) == ("39.00", "failed")
    assert lost["suggested_action"] == "start-late-failure"
    assert lost["detail"] == "expired_or_canceled_card"
    assert rows[2]["ledger_amount"] == "" and rows[2]["processor_amount"] == "12.50"

    summary = json.loads(await blobs.get(json_key))
    assert summary["totals"] == [
        {"currency": "EUR", "processor": 10900, "ledger": 14800, "difference": -3900,
         "processor_display": "EUR 109.00", "ledger_display": "EUR 148.00", "difference_display": "EUR -39.00"},
        {"currency": "USD", "processor": 1250, "ledger": 0, "difference": 1250,
         "processor_display": "USD 12.50", "ledger_display": "USD 0.00", "difference_display": "USD 12.50"},
    ]
    assert summary["by_class"] == {"duplicate-at-processor": 1, "foreign": 1, "status-mismatch": 1}
    assert summary["by_severity"] == {"critical": 1, "high": 1, "info": 1}
    assert (summary["items"], summary["open_items"], summary["for_finance"]) == (3, 2, 1)
    assert (summary["healed"], summary["processor_refunds"]) == (1, 5)
    assert summary["window"] == {"start": WINDOW.start.isoformat(), "end": WINDOW.end.isoformat()}

    # The same run written again gives the same bytes (a retried activity, a re-run finding the same).
    before = await blobs.get(csv_key), await blobs.get(json_key)
    await acts.write_reconciliation_report(ReconReportRequest(run_id=RUN_ID))
    assert (await blobs.get(csv_key), await blobs.get(json_key)) == before

    sent = await acts.send_reconciliation_email(ReconReportRequest(run_id=RUN_ID))
    again = await acts.send_reconciliation_email(ReconReportRequest(run_id=RUN_ID))
    assert (sent.status, again.status) == ("sent", "already-sent")
    assert len(h.sink.messages) == 1
    msg = h.sink.messages[0]
    assert msg["To"] == h.settings.email.finance_address
    # The healed item is not finance's: its follow-up run tells finance, the next run resolves it.
    assert msg["Subject"] == f"Reconciliation stripe {WINDOW.label}: 1 open item(s)"
    body = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "duplicate-at-processor: 1" in body and "status-mismatch" not in body
    assert "EUR 109.00 / EUR 148.00 / EUR -39.00" in body
    assert "3QNY9PJS" not in body  # counts and totals only; the CSV has the keys


async def test_no_email_when_nothing_is_open(h: Harness) -> None:
    await _seed_run(h.store, FINDINGS[:1])
    async with h.store.transaction() as conn:
        from ticketing.store.reconciliation import list_items, transition_item

        (item,) = await list_items(conn, run_id=RUN_ID)
        await transition_item(conn, item.id, ItemState.RESOLVED, reason="paid by bank", actor="fin", now=NOW)
    outcome = await ReconciliationReportActivities(h.deps).send_reconciliation_email(ReconReportRequest(run_id=RUN_ID))
    assert outcome.status == "skipped-nothing-open"
    assert h.sink.messages == []


async def test_runs_reports_and_the_item_queue_through_the_api(h: Harness) -> None:
    fin = await h.headers_for("fina", Role.FINANCE)
    await _seed_run(h.store)

    not_ready = await h.http.get(f"/reconciliation/runs/{RUN_ID}/report.csv", headers=fin)
    assert (not_ready.status_code, not_ready.json()["type"]) == (409, PROBLEM + "report-not-ready")
    await ReconciliationReportActivities(h.deps).write_reconciliation_report(ReconReportRequest(run_id=RUN_ID))

    runs = (await h.http.get("/reconciliation/runs", headers=fin)).json()
    assert [r["id"] for r in runs] == [RUN_ID]
    run = (await h.http.get(f"/reconciliation/runs/{RUN_ID}", headers=fin)).json()
    assert run["window"] == {"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}
    eur = next(t for t in run["totals"] if t["currency"] == "EUR")
    assert eur["difference"]["display"] == "EUR -39.00"
    assert run["reports"] == {
        "csv": f"/reconciliation/runs/{RUN_ID}/report.csv", "json": f"/reconciliation/runs/{RUN_ID}/report.json"
    }
    report = await h.http.get(run["reports"]["csv"], headers=fin)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    assert report.text.splitlines()[0] == ",".join(CSV_COLUMNS)
    summary = (await h.http.get(run["reports"]["json"], headers=fin)).json()
    assert summary["open_items"] == 2

    open_items = (await h.http.get("/reconciliation/items", params={"state": "open"}, headers=fin)).json()
    assert [i["kind"] for i in open_items] == ["duplicate-at-processor", "status-mismatch"]
    mismatch = (
        await h.http.get("/reconciliation/items", params={"state": "open", "class": "status-mismatch"}, headers=fin)
    ).json()
    assert len(mismatch) == 1 and mismatch[0]["amount"]["display"] == "EUR 39.00"
    iid = mismatch[0]["id"]

    ack = await h.http.post(f"/reconciliation/items/{iid}/acknowledge", json={"reason": "looking at it"}, headers=fin)
    assert ack.status_code == 200, ack.text
    assert (ack.json()["state"], ack.json()["actor"], ack.json()["reason"]) == ("acknowledged", "fina", "looking at it")
    done = await h.http.post(f"/reconciliation/items/{iid}/resolve", json={"reason": "late failure run refunded"},
                             headers=fin)
    assert done.json()["state"] == "resolved"
    back = await h.http.post(f"/reconciliation/items/{iid}/acknowledge", json={"reason": "oops"}, headers=fin)
    assert (back.status_code, back.json()["type"]) == (409, PROBLEM + "invalid-reconciliation-item-transition")
    left = (await h.http.get("/reconciliation/items", params={"state": "open"}, headers=fin)).json()
    assert len(left) == 1

    refusals = [
        (await h.http.post(f"/reconciliation/items/{iid}/resolve", json={"reason": ""}, headers=fin), 422,
         "validation-error"),
        (await h.http.post("/reconciliation/items/ri_missing/resolve", json={"reason": "gone"}, headers=fin), 404,
         "recon-item-not-found"),
        (await h.http.get("/reconciliation/runs/reconcile/stripe/nope", headers=fin), 404, "recon-run-not-found"),
        (await h.http.get("/reconciliation/items", params={"class": "nonsense"}, headers=fin), 422,
         "validation-error"),
        (await h.http.get("/reconciliation/items", headers=await h.headers_for("sup", Role.SUPPORT)), 403,
         "forbidden"),
    ]
    assert [(r.status_code, r.json()["type"]) for r, _, _ in refusals] == [
        (status, PROBLEM + slug) for _, status, slug in refusals
    ]
