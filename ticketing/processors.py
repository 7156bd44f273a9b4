"""What each payment processor can do, as domain knowledge.

The adapters declare these same objects, and the quote and the API read them
here without importing any SDK.
"""

from __future__ import annotations

from ticketing.models import Processor
from ticketing.refunds import ProcessorCapabilities

CAPABILITIES: dict[Processor, ProcessorCapabilities] = {
    # Stripe confirms asynchronously, refunds partially, and can fail a refund after success.
    Processor.STRIPE: ProcessorCapabilities(
        async_confirmation=True, partial_refunds=True, succeeded_is_final=False, manual=False
    ),
    # Invoices and vouchers: finance pays out and marks the refund done.
    Processor.MANUAL: ProcessorCapabilities(
        async_confirmation=True, partial_refunds=True, succeeded_is_final=True, manual=True
    ),
    Processor.FREE: ProcessorCapabilities(
        async_confirmation=False, partial_refunds=True, succeeded_is_final=True, manual=False
    ),
}


def reconcilable(processor: Processor) -> bool:
    """A processor that keeps its own records of our refunds, so the ledger can be compared with them.

    Manual payouts (finance's bank transfers) and free orders have no such record: nothing to reconcile.
    """
    caps = CAPABILITIES[processor]
    return caps.async_confirmation and not caps.manual
