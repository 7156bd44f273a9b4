"""Finance-facing search attributes. Values are ids, statuses and amounts: never personal data."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

ORDER_ID = SearchAttributeKey.for_keyword("OrderId")
EVENT_ID = SearchAttributeKey.for_keyword("EventId")
REFUND_STATUS = SearchAttributeKey.for_keyword("RefundStatus")
PAYMENT_PROCESSOR = SearchAttributeKey.for_keyword("PaymentProcessor")
REFUND_AMOUNT = SearchAttributeKey.for_int("RefundAmount")  # minor units of RefundCurrency
REFUND_CURRENCY = SearchAttributeKey.for_keyword("RefundCurrency")
# The processor's failure code of a refund-error run (`expired_or_canceled_card`), unset once it moves on.
REFUND_FAILURE = SearchAttributeKey.for_keyword("RefundFailure")
BULK_STATUS = SearchAttributeKey.for_keyword("BulkStatus")


# The dev server's SQLite visibility takes three Int attributes at most: RefundAmount and these two.
BULK_DONE = SearchAttributeKey.for_int("BulkDone")
BULK_FAILED = SearchAttributeKey.for_int("BulkFailed")

# Reconciliation runs: `ReconStatus = "open-items"` lists the windows finance must look at. The open-item
# count is a Double because the dev server's SQLite visibility has no Int slot left.
RECON_STATUS = SearchAttributeKey.for_keyword("ReconStatus")
RECON_OPEN_ITEMS = SearchAttributeKey.for_float("ReconOpenItems")

ALL: tuple[SearchAttributeKey[Any], ...] = (
    ORDER_ID,
    EVENT_ID,
    REFUND_STATUS,
    PAYMENT_PROCESSOR,
    REFUND_AMOUNT,
    REFUND_CURRENCY,
    REFUND_FAILURE,
    BULK_STATUS,
    BULK_DONE,
    BULK_FAILED,
    RECON_STATUS,
    RECON_OPEN_ITEMS,
)
