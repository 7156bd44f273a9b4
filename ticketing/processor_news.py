"""Where a processor's news about a refund goes: the one routing the webhook and reconciliation share.

The refund rule (`refund_ledger.judge`) says what the news means for the
ledger; this says who must apply it, because only a refund's own run writes
its ledger row. A webhook and a reconciliation replay of a missed webhook call
this with the same inputs and so do the same thing.
"""

from __future__ import annotations

from enum import StrEnum

from ticketing.models import Refund
from ticketing.refund_ledger import ProcessorOutcome, Settlement, judge
from ticketing.states import RefundStatus


class NewsRoute(StrEnum):
    SIGNAL_RUN = "signal-run"  # the refund's run is open: signal it the news
    START_RUN_WITH_NEWS = "start-run-with-news"  # its run is closed (or never started): start it, then signal
    START_LATE_FAILURE = "start-late-failure"  # refunded, then failed: the follow-up run, by its id
    START_LATE_ANSWER = "start-late-answer"  # a refund-error's own refund ended, its run closed: the follow-up run
    NO_CHANGE = "no-change"  # the ledger already agrees, or the news is about another attempt
    UNROUTABLE = "unroutable"  # the rule would move it, but no run may take it (finance looks); none today


def route_news(refund: Refund, outcome: ProcessorOutcome, *, run_open: bool) -> NewsRoute:
    settlement = judge(refund, outcome)
    if settlement is Settlement.LATE_FAILURE:
        return NewsRoute.START_LATE_FAILURE
    if settlement is Settlement.LATE_ANSWER:  # the run waiting in refund-error for finance takes it
        return NewsRoute.SIGNAL_RUN if run_open else NewsRoute.START_LATE_ANSWER
    if settlement is not Settlement.MOVE:
        return NewsRoute.NO_CHANGE
    if run_open:
        return NewsRoute.SIGNAL_RUN
    if refund.status in (RefundStatus.CONFIRMING, RefundStatus.REFUNDING):
        # A started run in confirming reads the news; one in refunding asks the processor for a refund of
        # ours before it submits (`payment_adapters.lookup.earlier_refund`), so it adopts this one.
        return NewsRoute.START_RUN_WITH_NEWS
    return NewsRoute.UNROUTABLE
