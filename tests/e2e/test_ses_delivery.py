"""The SES provider chosen by configuration, end to end through the real worker, against moto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from devtools.ses_server import SesServer
from email_providers.factory import make_provider
from email_providers.from_settings import email_settings
from email_providers.ses import SesProvider
from runtime.settings import EmailConfig, Settings
from tests.e2e.action_support import history, seeded
from tests.harness import running
from ticketing.store.deliveries import deliveries_for
from ticketing.store.engine import Store

SENDER = "tickets@ticketops.local"


@pytest.fixture(scope="module")
def ses() -> Iterator[SesServer]:
    server = SesServer(region="eu-west-1")
    server.start()
    server.verify_sender(SENDER)
    yield server
    server.stop()


def _ses_config(monkeypatch: pytest.MonkeyPatch, ses: SesServer, sender: str) -> EmailConfig:
    """What an operator sets: TICKETOPS_EMAIL__PROVIDER=ses and the SES endpoint, region and keys."""
    for name, value in {
        "TICKETOPS_EMAIL__PROVIDER": "ses",
        "TICKETOPS_EMAIL__SENDER": sender,
        "TICKETOPS_EMAIL__SES__ENDPOINT_URL": ses.endpoint_url,
        "TICKETOPS_EMAIL__SES__REGION": "eu-west-1",
        "TICKETOPS_EMAIL__SES__ACCESS_KEY_ID": "testing",
        "TICKETOPS_EMAIL__SES__SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    return Settings().email


async def test_receipt_goes_out_through_ses(
    monkeypatch: pytest.MonkeyPatch, ses: SesServer, temporal_client: Client, store: Store, tmp_path: Path,
    queue_prefix: str,
) -> None:  # fmt: skip
    config = _ses_config(monkeypatch, ses, SENDER)
    probe = make_provider(email_settings(config))
    assert isinstance(probe, SesProvider)
    await probe.close()
    async with running(temporal_client, store, tmp_path, queue_prefix, settings_overrides={"email": config}) as h:
        _, order = await seeded(h, tickets=1)
        resp = await h.http.post(f"/orders/{order.code}/receipt")
        op = resp.json()["operation_id"]
        done = await h.wait_operation(op)
        assert done["status"] == "completed", done
        assert h.sink.messages == []  # nothing went to SMTP
        async with store.transaction() as conn:
            [row] = await deliveries_for(conn, op)
    assert (row.provider, row.status) == ("ses", "sent")
    [sent] = [m for m in ses.sent_messages() if m.message.get("Message-ID") == f"<{row.message_id}>"]
    assert sent.source == SENDER and set(sent.destinations) == {"ada@example.com"}
    assert sent.message["To"] == "ada@example.com"
    assert sent.message["Subject"] == f"Receipt for order {order.code}"
    [pdf] = list(sent.message.iter_attachments())
    assert pdf.get_filename() == f"receipt-{order.code}.pdf"
    assert pdf.get_content().startswith(b"%PDF")


async def test_a_rejected_message_is_logged_failed_with_the_ses_reason(
    monkeypatch: pytest.MonkeyPatch, ses: SesServer, temporal_client: Client, store: Store, tmp_path: Path,
    queue_prefix: str,
) -> None:  # fmt: skip
    config = _ses_config(monkeypatch, ses, "nobody@unverified.example")
    before = len(ses.sent_messages())
    async with running(temporal_client, store, tmp_path, queue_prefix, settings_overrides={"email": config}) as h:
        _, order = await seeded(h, tickets=1)
        resp = await h.http.post(f"/orders/{order.code}/resend")
        op = resp.json()["operation_id"]
        done = await h.wait_operation(op)
        async with store.transaction() as conn:
            [row] = await deliveries_for(conn, op)
        failed = await history(h, order.code, "delivery-failed")
    assert done["status"] == "failed" and done["error"]["type"] == "email-rejected"
    assert (row.provider, row.status, row.attempts) == ("ses", "failed", 1)
    assert row.reason.startswith("MessageRejected")
    assert [f.data["kind"] for f in failed] == ["tickets"]
    assert len(ses.sent_messages()) == before
