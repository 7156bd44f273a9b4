"""Translate our settings (`runtime.settings.EmailConfig`) into the email provider's settings.

It lives here, not in `runtime/`, so that `runtime/` stays the bottom layer and imports
nothing of ours: the adapter knows the settings, the settings know no adapter.
"""

from __future__ import annotations

from email_providers.factory import EmailSettings
from email_providers.ses import SesSettings
from email_providers.smtp import SmtpSettings
from runtime.settings import EmailConfig


def email_settings(config: EmailConfig) -> EmailSettings:
    smtp = config.smtp
    ses = config.ses
    return EmailSettings(
        provider=config.provider,
        sender=config.sender,
        finance_address=config.finance_address,
        smtp=SmtpSettings(
            host=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.password,
            security=smtp.security,
            timeout=smtp.timeout,
            pool_size=smtp.pool_size,
        ),
        ses=SesSettings(
            region=ses.region,
            endpoint_url=ses.endpoint_url,
            access_key_id=ses.access_key_id,
            secret_access_key=ses.secret_access_key.get_secret_value(),
            configuration_set=ses.configuration_set,
        ),
    )
