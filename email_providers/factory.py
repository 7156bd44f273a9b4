"""Choose the email provider from settings (the workers build one per process)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from email_providers.base import EmailProvider
from email_providers.ses import SesProvider, SesSettings
from email_providers.smtp import SmtpProvider, SmtpSettings


class EmailSettings(BaseModel):
    provider: Literal["smtp", "ses"] = "smtp"
    sender: str = "tickets@ticketops.local"
    finance_address: str = "finance@ticketops.local"
    smtp: SmtpSettings = SmtpSettings()
    ses: SesSettings | None = None


def make_provider(settings: EmailSettings) -> EmailProvider:
    if settings.provider == "ses":
        if settings.ses is None:
            raise ValueError("provider is 'ses' but the ses settings are missing")
        return SesProvider(settings.ses)
    return SmtpProvider(settings.smtp)
