"""Amazon SES (v2 API) provider: sends the same MIME bytes as SMTP, as a raw message.

boto3 is synchronous, so each call runs in a worker thread; one client is shared, since
boto3 clients are thread-safe. botocore retries throttling and 5xx itself (standard mode)
before the error reaches here, where it is classified for the caller's own retries.
"""

from __future__ import annotations

import asyncio
import logging
from email.utils import getaddresses, parseaddr
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, SecretStr

from email_providers.base import (
    EmailError,
    OutgoingEmail,
    PermanentEmailError,
    SendResult,
    TransientEmailError,
)
from email_providers.mime import build_mime

log = logging.getLogger(__name__)

# Error codes of SESv2 SendEmail (and of the v1 API behind some endpoints) that can succeed
# later without anyone changing the message. Everything else 4xx is about this message or
# this account's setup (MessageRejected, MailFromDomainNotVerified, AccountSuspended, ...).
_TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestTimeout",
        "ServiceUnavailable",
        "InternalFailure",
    }
)


class SesSettings(BaseModel):
    region: str = "eu-west-1"
    endpoint_url: str | None = None  # moto's server in tests and `dev`
    access_key_id: str | None = None  # None: boto3's usual chain (role, env, profile)
    secret_access_key: SecretStr | None = None
    configuration_set: str | None = None
    timeout: float = 30.0
    max_attempts: int = 3  # botocore's own attempts per send, throttling included


def classify(exc: ClientError | BotoCoreError) -> EmailError:
    """Throttling, 5xx and network trouble are Transient; other refusals are Permanent.

    `code` stays None: it is reserved for SMTP reply codes; the SES error code is in `reason`.
    """
    if isinstance(exc, BotoCoreError):  # connection refused, timeouts, TLS: no reply at all
        return TransientEmailError(f"SES unreachable: {exc}")
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    reason = f"{code}: {message}" if message else code
    if code in _TRANSIENT_CODES or status >= 500 or status == 429:
        return TransientEmailError(reason)
    return PermanentEmailError(reason)


class SesProvider:
    name = "ses"

    def __init__(self, settings: SesSettings) -> None:
        self._settings = settings
        secret = settings.secret_access_key
        self._client: Any = boto3.session.Session().client(
            "sesv2",
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=Config(
                connect_timeout=settings.timeout,
                read_timeout=settings.timeout,
                retries={"mode": "standard", "max_attempts": settings.max_attempts},
            ),
        )

    async def send(self, email: OutgoingEmail) -> SendResult:
        try:
            mime = build_mime(email)
        except ValueError as exc:  # a header with a line break, an address that is none: never sendable
            raise PermanentEmailError(f"message cannot be built: {exc}") from exc
        request: dict[str, Any] = {
            "FromEmailAddress": parseaddr(email.sender)[1] or email.sender,
            "Destination": {"ToAddresses": [addr for _, addr in getaddresses(email.to) if addr]},
            "Content": {"Raw": {"Data": mime}},
        }
        if self._settings.configuration_set:
            request["ConfigurationSetName"] = self._settings.configuration_set
        try:
            response = await asyncio.to_thread(self._client.send_email, **request)
        except (ClientError, BotoCoreError) as exc:
            error = classify(exc)
            log.warning(
                "ses send failed",
                extra={"message_id": email.message_id, "error_class": type(error).__name__},
            )
            raise error from (None if error is exc else exc)
        return SendResult(provider_message_id=response.get("MessageId"))

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
