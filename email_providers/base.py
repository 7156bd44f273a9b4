"""What every email provider takes, returns and raises.

Callers (email activities) build an `OutgoingEmail`, call `send`, and map the two error
classes onto Temporal retries: `TransientEmailError` is retried with backoff,
`PermanentEmailError` is a business failure recorded on the order and not retried.
"""

from __future__ import annotations

import re
from typing import Protocol

from pydantic import BaseModel, ConfigDict, field_validator

_MESSAGE_ID = re.compile(r"^[^\s<>@]+@[^\s<>@]+$")
# Set by email_providers.mime.build_mime; a second copy from `headers` would make an ambiguous message.
_RESERVED_HEADERS = frozenset(
    {"message-id", "date", "from", "to", "subject", "mime-version", "content-type",
     "content-transfer-encoding", "bcc"}
)  # fmt: skip


class Attachment(BaseModel):
    model_config = ConfigDict(frozen=True)

    filename: str
    content_type: str
    data: bytes

    @field_validator("content_type")
    @classmethod
    def _has_subtype(cls, value: str) -> str:
        if value.count("/") != 1:
            raise ValueError(f"content_type must be type/subtype, got {value!r}")
        return value


class OutgoingEmail(BaseModel):
    """One email as the provider should send it.

    `message_id` is `left@right` (angle brackets optional). Derive it from the workflow id so
    a retried send carries the same Message-ID and mail clients can fold duplicates.
    """

    model_config = ConfigDict(frozen=True)

    message_id: str
    sender: str
    to: list[str]
    subject: str
    text: str
    html: str
    attachments: list[Attachment] = []
    headers: dict[str, str] = {}

    @field_validator("message_id")
    @classmethod
    def _bare_message_id(cls, value: str) -> str:
        value = value.strip().removeprefix("<").removesuffix(">")
        if not _MESSAGE_ID.match(value):
            raise ValueError("message_id must look like left@right, without spaces")
        return value

    @field_validator("headers")
    @classmethod
    def _no_reserved_headers(cls, value: dict[str, str]) -> dict[str, str]:
        clash = sorted(name for name in value if name.lower() in _RESERVED_HEADERS)
        if clash:
            raise ValueError(f"headers set from the email's fields: {', '.join(clash)}")
        return value

    @field_validator("to")
    @classmethod
    def _some_recipient(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("an email needs at least one recipient")
        return value


class SendResult(BaseModel):
    """What the provider said. `provider_message_id`: SES MessageId or the SMTP queue id.

    `rejected_recipients` maps the addresses a server refused while accepting others to its
    reply ("550 5.1.1 unknown user"); when it refuses all of them, send raises instead.
    """

    model_config = ConfigDict(frozen=True)

    provider_message_id: str | None
    rejected_recipients: dict[str, str] = {}


class EmailError(Exception):
    """Base of the errors providers raise; `code` is the SMTP reply code when there is one."""

    def __init__(self, reason: str, code: int | None = None, *, recipient: bool = False) -> None:
        super().__init__(reason if code is None else f"{code} {reason}")
        self.reason = reason
        self.code = code
        self.recipient = recipient  # about the recipient (greylisted, mailbox full), not the relay


class TransientEmailError(EmailError):
    """Try again later: connection refused or lost, timeouts, 4xx replies, throttling.

    With `recipient` set, only this recipient is refused for now (a 4xx to RCPT): other
    messages can go on, and this one is worth trying again in minutes, not seconds.
    """


class PermanentEmailError(EmailError):
    """Do not retry: the provider refused this message (5xx replies, SES MessageRejected)."""


class EmailProvider(Protocol):
    name: str

    async def send(self, email: OutgoingEmail) -> SendResult: ...

    async def close(self) -> None: ...
