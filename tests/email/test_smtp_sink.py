"""The SMTP sink as tests and `dev` use it, including its command line."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from devtools.smtp_sink import SmtpSink
from email_providers.smtp import SmtpProvider, SmtpSettings
from tests.email.conftest import make_email

ROOT = Path(__file__).resolve().parents[2]


async def test_restart_keeps_the_port_and_the_files(sink: SmtpSink) -> None:
    port = sink.port
    provider = SmtpProvider(SmtpSettings(port=port, timeout=5))
    await provider.send(make_email(1))
    await sink.stop()
    assert not sink.running
    await sink.start()
    assert sink.port == port
    await provider.send(make_email(2))
    await provider.close()

    files = sorted(sink.directory.glob("*.eml"))
    assert len(files) == 2
    assert [d.path for d in sink.deliveries] == files
    sink.clear()
    assert sink.messages == []
    assert len(list(sink.directory.glob("*.eml"))) == 2


async def test_wait_for_messages_times_out(sink: SmtpSink) -> None:
    try:
        await sink.wait_for_messages(1, timeout=0.1)
    except TimeoutError as exc:
        assert "0 of 1" in str(exc)
    else:
        raise AssertionError("expected a timeout")


async def test_command_line_sink_stores_mail(tmp_path: Path) -> None:
    mail_dir = tmp_path / "mail"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devtools.smtp_sink", "--dir", str(mail_dir), "--port", "0",
        stdout=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), timeout=20)).decode()
        port = int(banner.split(":")[1].split(",")[0])
        provider = SmtpProvider(SmtpSettings(port=port, timeout=5))
        await provider.send(make_email(1))
        await provider.close()
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    [eml] = list(mail_dir.glob("*.eml"))
    assert b"Message-ID: <tickets/A1B2C3/1@ticketops.local>" in eml.read_bytes()
