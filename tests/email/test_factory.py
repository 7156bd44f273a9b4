"""make_provider picks the provider the settings name."""

from __future__ import annotations

import pytest

from email_providers.factory import EmailSettings, make_provider
from email_providers.ses import SesProvider, SesSettings
from email_providers.smtp import SmtpProvider, SmtpSettings


async def test_smtp_is_the_default() -> None:
    provider = make_provider(EmailSettings(smtp=SmtpSettings(port=2525)))
    assert isinstance(provider, SmtpProvider)
    assert provider.name == "smtp"
    await provider.close()


async def test_ses_needs_its_settings() -> None:
    with pytest.raises(ValueError, match="ses"):
        make_provider(EmailSettings(provider="ses"))
    provider = make_provider(
        EmailSettings(provider="ses", ses=SesSettings(endpoint_url="http://127.0.0.1:9"))
    )
    assert isinstance(provider, SesProvider)
    assert provider.name == "ses"
    await provider.close()
