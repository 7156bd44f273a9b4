"""Who a buyer's email comes from: the organiser's name, colour and reply-to address.

An event's policy may name its own; otherwise the ticket office's defaults from settings
apply. The sender's address stays ours (it is the one SPF/DKIM vouch for); only its
display name is the organiser's.
"""

from __future__ import annotations

from email.utils import formataddr, parseaddr

from pydantic import BaseModel, ConfigDict

from runtime.settings import EmailConfig
from ticketing.models import Event


class Branding(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = "Ticket office"
    colour: str = "#1d4ed8"
    reply_to: str | None = None


def event_branding(event: Event | None, defaults: EmailConfig) -> Branding:
    policy = event.policy if event else None
    return Branding(
        name=(policy.organiser_name if policy else None) or defaults.sender_name,
        colour=(policy.brand_colour if policy else None) or defaults.brand_colour,
        reply_to=(policy.reply_to if policy else None) or defaults.reply_to or None,
    )


def sender_mailbox(branding: Branding, sender: str) -> str:
    """`Name <address>` from the configured sender's address and the organiser's name."""
    return formataddr((branding.name, parseaddr(sender)[1] or sender))


def reply_headers(branding: Branding) -> dict[str, str]:
    return {"Reply-To": branding.reply_to} if branding.reply_to else {}
