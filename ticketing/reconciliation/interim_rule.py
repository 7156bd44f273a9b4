"""INTERIM, deleted when `refund-engine` lands: the refund rule's `judge` as that branch defines it.

Reconciliation imports `ticketing.refund_ledger.judge`; until that exists on this
branch, this copy of the same text stands in so the engine can be tested.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from ticketing.models import Refund
from ticketing.reconciliation_records import ProcessorRefundStatus
from ticketing.states import RefundStatus


class ProcessorOutcome(BaseModel):
    processor_refund_id: str
    status: ProcessorRefundStatus
    failure_reason: str | None = None


class Settlement(StrEnum):
    NO_CHANGE = "no-change"
    MOVE = "move"
    LATE_FAILURE = "late-failure"
    PAID_MANUALLY = "paid-manually"


_FAILED = (ProcessorRefundStatus.FAILED, ProcessorRefundStatus.CANCELED)


def _moves(status: RefundStatus, outcome_status: ProcessorRefundStatus) -> bool:
    if status is RefundStatus.REFUNDING:
        return True
    if status is RefundStatus.CONFIRMING:
        return outcome_status is ProcessorRefundStatus.SUCCEEDED or outcome_status in _FAILED
    return status is RefundStatus.SUCCEEDED and outcome_status in _FAILED


def judge(refund: Refund, outcome: ProcessorOutcome) -> Settlement:
    if refund.processor_refund_id and refund.processor_refund_id != outcome.processor_refund_id:
        return Settlement.NO_CHANGE
    if not _moves(refund.status, outcome.status):
        return Settlement.NO_CHANGE
    if refund.status is RefundStatus.SUCCEEDED:
        return Settlement.PAID_MANUALLY if refund.manual_reference is not None else Settlement.LATE_FAILURE
    return Settlement.MOVE
