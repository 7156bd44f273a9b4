"""What activities need from the outside world, built once per worker process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from runtime.settings import Settings
from ticketing.store.engine import Store

if TYPE_CHECKING:
    from email_providers.base import EmailProvider
    from payment_adapters.base import PaymentAdapter
    from ticketing.models import Processor


@dataclass
class Deps:
    settings: Settings
    store: Store
    email: EmailProvider
    payments: dict[Processor, PaymentAdapter] = field(default_factory=dict)
