"""What a refund waits for, in words an agent or a finance clerk reads: one phrase per status.

The refund workflow shows it as its current details, and the API lists it for
every refund without asking each workflow, so both say the same thing.
The phrase never repeats the status itself (the caller prints that beside it).
"""

from __future__ import annotations

from ticketing.states import RefundStatus

_WAITS: dict[RefundStatus, str] = {
    RefundStatus.REQUESTED: "ticketops to write it to the ledger",
    RefundStatus.AWAITING_APPROVAL: "approval by a second finance user",
    RefundStatus.AWAITING_MANUAL: "finance to pay out by hand and mark it refunded",
    RefundStatus.REFUNDING: "the processor to accept it",
    RefundStatus.CONFIRMING: "the processor to confirm it (webhook or poll)",
    RefundStatus.FAILED: "finance to retry it or mark it refunded",
}


def waiting_for(status: RefundStatus) -> str | None:
    """None for a refund that waits for nobody (refunded, rejected)."""
    return _WAITS.get(status)
