"""Stripe as a `ReconciliationSource`: its list APIs, one page per call.

Stripe cannot search refunds by metadata, so the reconciler walks every refund
created in the window and reads our keys from each one's metadata
(`refund_id`, `idempotency_key`, `order_code`, `workflow_id`: what
`StripeAdapter.create_refund` writes). Lists are newest first; a cursor is the
last object id of a page (`starting_after`), so a walk resumes exactly where a
checkpoint left it. A window `[start, end)` becomes `created[gte]` and
`created[lt]` on Stripe's whole seconds. Pages hold at most 100 (Stripe's cap).

A refund page is read with `expand[]=data.balance_transaction` and
`data.failure_balance_transaction`, so each refund brings its own balance
entries in the same read: one read per page instead of a refund page and a
balance page under the same read limit. The balance listing is then needed
only for refund failures created in the window (`failures_only`), whose
refunds may be older than the window. Refund pages are read with the SDK's
`raw_request_async` and used as plain JSON: building SDK objects for an
expanded page of 100 cost more CPU than the rest of the page's handling.
The SDK makes one attempt: a 429, a 5xx or the network raise
`ProcessorUnavailable` for the caller to pace and retry; any other error is
`ProcessorRejected`.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import stripe

from payment_adapters.base import WebhookEvent
from payment_adapters.stripe import REFUND_EVENT_TYPES, plain, translate_error, webhook_event
from ticketing.models import Processor
from ticketing.reconciliation_records import (
    BalanceEntry,
    Page,
    ProcessorRefundRecord,
    ProcessorRefundStatus,
    ReconWindow,
    UndeliveredEvent,
)

MAX_PAGE = 100
# Balance transaction types that move refund money, walked one after another
# (Stripe filters on one `type` at a time): card refunds and their failures,
# then the same for other payment methods.
BALANCE_TYPES = ("refund", "refund_failure", "payment_refund", "payment_failure_refund")
# What the refunds' inline entries do not cover: the credits of refunds that failed.
FAILURE_TYPES = ("refund_failure", "payment_failure_refund")
REFUND_EXPAND = ("data.balance_transaction", "data.failure_balance_transaction")
# Events whose loss would hide a refund's outcome from us: the ones our webhook acts on.
EVENT_TYPES = tuple(sorted(REFUND_EVENT_TYPES))

T = TypeVar("T")


def created_range(window: ReconWindow) -> dict[str, int]:
    """`[start, end)` on whole seconds: created >= ceil(start) and created < ceil(end)."""
    return {"gte": math.ceil(window.start.timestamp()), "lt": math.ceil(window.end.timestamp())}


def _at(stamp: int) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def _id(value: Any) -> str | None:
    """An expandable field: an id, or the expanded object's id."""
    if value is None or isinstance(value, str):
        return value
    return str(value["id"]) if isinstance(value, dict) else str(value.id)


def refund_record(raw: Any, *, expanded: bool = False) -> ProcessorRefundRecord:
    """`expanded`: the read asked for the refund's balance transactions inline; those that came
    as objects are its `balance_entries` (an id where an object was asked for is not one)."""
    obj = plain(raw)
    metadata = obj.get("metadata") or {}
    entries = None
    if expanded:
        inline = (obj.get("balance_transaction"), obj.get("failure_balance_transaction"))
        entries = [balance_entry(t) for t in inline if isinstance(t, dict)]
    return ProcessorRefundRecord(
        processor=Processor.STRIPE,
        id=obj["id"],
        status=ProcessorRefundStatus(obj["status"]),
        amount=int(obj["amount"]),
        currency=str(obj["currency"]).upper(),
        created_at=_at(obj["created"]),
        payment_reference=_id(obj.get("payment_intent")) or _id(obj.get("charge")),
        failure_reason=obj.get("failure_reason"),
        pending_reason=obj.get("pending_reason"),
        ledger_refund_id=metadata.get("refund_id"),
        idempotency_key=metadata.get("idempotency_key"),
        order_code=metadata.get("order_code"),
        workflow_id=metadata.get("workflow_id"),
        balance_transaction=_id(obj.get("balance_transaction")),
        failure_balance_transaction=_id(obj.get("failure_balance_transaction")),
        balance_entries=entries,
    )


def balance_entry(raw: Any) -> BalanceEntry:
    obj = plain(raw)
    return BalanceEntry(
        processor=Processor.STRIPE,
        id=obj["id"],
        type=obj["type"],
        reporting_category=obj.get("reporting_category") or obj["type"],
        source=_id(obj.get("source")),
        amount=int(obj["amount"]),
        currency=str(obj["currency"]).upper(),
        created_at=_at(obj["created"]),
    )


def undelivered_event(raw: Any) -> UndeliveredEvent:
    obj = plain(raw)
    subject = obj["data"]["object"]
    return UndeliveredEvent(
        processor=Processor.STRIPE,
        id=obj["id"],
        type=obj["type"],
        created_at=_at(obj["created"]),
        processor_refund_id=subject.get("id") if subject.get("object") == "refund" else None,
    )


class StripeReconciliationSource:
    """Reads refunds, refund balance transactions and undelivered events from Stripe."""

    processor = Processor.STRIPE
    inline_balance = True

    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client

    async def refund_page(self, window: ReconWindow, cursor: str | None, limit: int) -> Page[ProcessorRefundRecord]:
        """Each refund with its balance entries inline (see the module's docstring)."""
        params: dict[str, Any] = {
            "created": created_range(window), "limit": _limit(limit), "expand": list(REFUND_EXPAND),
        }  # fmt: skip
        if cursor:
            params["starting_after"] = cursor
        response = await _call(self.client.raw_request_async("get", "/v1/refunds", **params))
        page = response.data
        data = page["data"]
        nxt = str(data[-1]["id"]) if page.get("has_more") and data else None
        return Page(items=[refund_record(r, expanded=True) for r in data], next_cursor=nxt)

    async def balance_page(
        self, window: ReconWindow, cursor: str | None, limit: int, *, failures_only: bool = False
    ) -> Page[BalanceEntry]:
        """Walks `BALANCE_TYPES` (`FAILURE_TYPES`) in turn; the cursor is `type:last_id` (`type:` to start a type).

        A page is filled across types, so an empty page is always the last.
        """
        types = FAILURE_TYPES if failures_only else BALANCE_TYPES
        kind, _, after = (cursor or f"{types[0]}:").partition(":")
        if kind not in types:
            raise ValueError(f"not a balance cursor: {cursor!r}")
        wanted = _limit(limit)
        items: list[BalanceEntry] = []
        index = types.index(kind)
        while True:
            params: dict[str, Any] = {
                "type": types[index],
                "created": created_range(window),
                "limit": wanted - len(items),
            }
            if after:
                params["starting_after"] = after
            page = await _call(self.client.v1.balance_transactions.list_async(params=cast(Any, params)))
            items.extend(balance_entry(t) for t in page.data)
            last = _next(page)
            if last is not None:
                return Page(items=items, next_cursor=f"{types[index]}:{last}")
            index += 1
            after = ""
            if index == len(types):
                return Page(items=items, next_cursor=None)
            if len(items) >= wanted:
                return Page(items=items, next_cursor=f"{types[index]}:")

    async def undelivered_event_page(
        self, window: ReconWindow, cursor: str | None, limit: int
    ) -> Page[UndeliveredEvent]:
        params: dict[str, Any] = {
            "delivery_success": False,
            "types": list(EVENT_TYPES),
            "created": created_range(window),
            "limit": _limit(limit),
        }
        if cursor:
            params["starting_after"] = cursor
        page = await _call(self.client.v1.events.list_async(params=cast(Any, params)))
        return Page(items=[undelivered_event(e) for e in page.data], next_cursor=_next(page))

    async def refunds_for_payment(self, payment_reference: str) -> list[ProcessorRefundRecord]:
        field = "charge" if payment_reference.startswith(("ch_", "py_")) else "payment_intent"
        params: dict[str, Any] = {field: payment_reference, "limit": MAX_PAGE}
        found: list[ProcessorRefundRecord] = []
        while True:
            page = await _call(self.client.v1.refunds.list_async(params=cast(Any, params)))
            found.extend(refund_record(r) for r in page.data)
            last = _next(page)
            if last is None:
                return found
            params["starting_after"] = last

    async def event(self, event_id: str) -> WebhookEvent:
        """An event fetched from the API, normalised as a verified webhook is (to replay a missed one)."""
        fetched = await _call(self.client.v1.events.retrieve_async(event_id))
        return webhook_event(plain(fetched))


def _limit(limit: int) -> int:
    return max(1, min(MAX_PAGE, limit))


def _next(page: Any) -> str | None:
    """The cursor for the page after this one, or None when this was the last."""
    return str(page.data[-1].id) if page.has_more and page.data else None


async def _call(request: Awaitable[T]) -> T:
    try:
        return await request
    except stripe.StripeError as err:
        raise translate_error(err) from err
