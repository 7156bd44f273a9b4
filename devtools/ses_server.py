"""A local SES endpoint: moto's server mode in a thread, plus a view of what it "sent".

The server runs in this process, so sent messages are read from moto's backend directly
instead of over its HTTP API. moto keeps state per process and per account/region, shared
with any other moto server in the process (an S3 one for blobs, say); `clear` therefore
forgets only SES's sent messages.

moto refuses to send from an address that is not verified, as SES does outside the
sandbox: call `verify_sender` first.
"""

from __future__ import annotations

import email
import email.policy
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.ses.models import ses_backends

FAKE_KEY_ID = "testing"
FAKE_SECRET = "testing"  # moto accepts any credentials


@dataclass(frozen=True)
class SentRawEmail:
    message_id: str
    source: str
    destinations: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class SesServer:
    """moto server on 127.0.0.1 with a random port; `endpoint_url` once started."""

    def __init__(self, region: str = "eu-west-1", account_id: str = DEFAULT_ACCOUNT_ID) -> None:
        self.region = region
        self.account_id = account_id
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._started = False

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per call
        self._server.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def client(self) -> Any:
        """A boto3 SESv2 client for this server (to verify identities, for instance)."""
        return boto3.session.Session().client(
            "sesv2",
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=FAKE_KEY_ID,
            aws_secret_access_key=FAKE_SECRET,
        )

    def verify_sender(self, address: str) -> None:
        """Verify an address or a domain, so that moto lets it send."""
        self.client().create_email_identity(EmailIdentity=address)

    def sent_messages(self) -> list[SentRawEmail]:
        """Raw messages accepted so far in this region, oldest first."""
        backend = ses_backends[self.account_id][self.region]
        return [
            SentRawEmail(
                message_id=message.id,
                source=message.source,
                destinations=tuple(message.destinations),
                raw=message.raw_data.encode(),
            )
            for message in backend.sent_messages
            if hasattr(message, "raw_data")
        ]

    def clear(self) -> None:
        ses_backends[self.account_id][self.region].sent_messages.clear()
