"""Request-scoped access to the shared store, the Temporal facade and the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from backoffice.api.auth import principal_of
from backoffice.operations import Operations
from runtime.settings import Settings
from ticketing.store.engine import Store

if TYPE_CHECKING:
    from payment_adapters.base import PaymentAdapter
    from ticketing.models import Processor


@dataclass
class AppState:
    settings: Settings
    store: Store
    operations: Operations
    payments: dict[Processor, PaymentAdapter] = field(default_factory=dict)


def state(request: Request) -> AppState:
    return request.app.state.ticketops


async def actor(request: Request) -> str:
    """Who acts, recorded in history and workflow memos: the authenticated principal's name."""
    return (await principal_of(request)).name
