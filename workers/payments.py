"""Payment adapters by processor, built from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runtime.settings import Settings

if TYPE_CHECKING:
    from payment_adapters.base import PaymentAdapter
    from ticketing.models import Processor


def payment_adapters(settings: Settings) -> dict[Processor, PaymentAdapter]:
    return {}
