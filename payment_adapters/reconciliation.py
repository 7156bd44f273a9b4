"""The seam reconciliation reads a processor through: pages of normalised records.

Each call fetches one page after `cursor` (None for the first), so a caller
can checkpoint the cursor, heartbeat, continue as new and resume after a crash.
A 429 or 5xx raises `ProcessorUnavailable`; the caller paces and backs off.
Stripe implements it from its list APIs; a processor that reports by
settlement file would parse the file; manual and free processors have none.
"""

from __future__ import annotations

from typing import Protocol

from ticketing.models import Processor
from ticketing.reconciliation_records import (
    BalanceEntry,
    Page,
    ProcessorRefundRecord,
    ReconWindow,
    UndeliveredEvent,
)


class ReconciliationSource(Protocol):
    processor: Processor
    inline_balance: bool  # `refund_page` sets each record's `balance_entries`

    async def refund_page(self, window: ReconWindow, cursor: str | None, limit: int) -> Page[ProcessorRefundRecord]:
        """Refunds created in the window, oldest first is not promised; every one exactly once.

        A source that can read each refund's own balance entries with it sets `balance_entries`
        on every record (an empty list: the processor has none); one that cannot leaves it None.
        """
        ...

    async def balance_page(
        self, window: ReconWindow, cursor: str | None, limit: int, *, failures_only: bool = False
    ) -> Page[BalanceEntry]:
        """Refund and refund-failure balance transactions created in the window.

        `failures_only`: only the refund failures' credits, for a reader that has each refund's
        debit from `refund_page` already (a failure may come days after its refund).
        """
        ...

    async def undelivered_event_page(
        self, window: ReconWindow, cursor: str | None, limit: int
    ) -> Page[UndeliveredEvent]:
        """Refund and charge events not (yet) delivered to every endpoint (Stripe keeps 30 days)."""
        ...

    async def refunds_for_payment(self, payment_reference: str) -> list[ProcessorRefundRecord]:
        """Every refund on one payment, whenever created: for over-refund and duplicate checks."""
        ...
