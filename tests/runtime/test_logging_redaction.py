"""Log lines never carry personal data or credentials, whatever a caller passes to the logger."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator

import pytest
import structlog

from runtime.logging import configure_logging

EMAIL = "ada.lovelace@example.com"
NAME = "Ada Lovelace"
API_KEY = "tk_0123456789ab_S3cr3t-Key_material_xyz"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZGEifQ.c2lnbmF0dXJl"


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The production pipeline, writing to a buffer instead of stderr."""
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    configure_logging(json=True)
    yield buffer
    structlog.reset_defaults()


def test_personal_data_and_keys_are_redacted(json_logs: io.StringIO) -> None:
    log = structlog.get_logger("redaction-test")
    log.info(
        "delivery.sent",
        email=EMAIL,
        contact_name=NAME,
        api_key=API_KEY,
        authorization=f"Bearer {API_KEY}",
        note=f"resent to {EMAIL} with key {API_KEY} and token {JWT}",
        recipients=[{"email": EMAIL, "holder": NAME}],
        order_code="A1B2C3",
    )
    try:
        raise ValueError(f"SMTP refused {EMAIL}")
    except ValueError:
        log.exception("delivery.failed", order_code="A1B2C3")
    text = json_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert [line["event"] for line in lines] == ["delivery.sent", "delivery.failed"]
    for secret in (EMAIL, NAME, "Lovelace", API_KEY, "S3cr3t", JWT):
        assert secret not in text
    assert lines[0]["order_code"] == "A1B2C3"  # what is not personal is kept
    assert lines[0]["note"] == "resent to [email] with key [api-key] and token [token]"
    assert "SMTP refused [email]" in lines[1]["exception"]
