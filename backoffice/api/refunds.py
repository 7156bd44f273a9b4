"""Refund routes: preview (a quote with a hash), request, read, retry, mark refunded, approve."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from temporalio.common import SearchAttributePair
from temporalio.workflow import UpdateMethodMultiParam

from backoffice.api.auth import FINANCE, SUPPORT
from backoffice.api.deps import AppState, actor, state
from backoffice.api.idempotency import check_idempotency_key, idempotent
from backoffice.api.paging import Offset
from backoffice.api.problems import ProblemError
from backoffice.api.views import MoneyView
from backoffice.api.waiting import accepts_wait
from payment_adapters.base import ProcessorUnavailable
from payment_adapters.lookup import earlier_refund
from ticketing import refund_ledger
from ticketing.errors import ActionNotAllowed
from ticketing.models import Refund, RefundKind
from ticketing.money import Money
from ticketing.processors import CAPABILITIES
from ticketing.refund_ledger import RefundAction
from ticketing.refund_waits import waiting_for
from ticketing.refunds import (
    RefundQuote,
    RefundRequest,
    follow_up_workflow_ids,
    needs_approval,
    quote_refund,
    refund_summary,
)
from ticketing.states import RefundStatus
from ticketing.store.orders import load_event, load_order
from ticketing.store.refunds import list_refunds, load_refund
from workflows.contracts import ApproveRefund, MarkRefunded, RefundInput, RetryRefund
from workflows.refund import RefundWorkflow
from workflows.search_attributes import (
    EVENT_ID,
    ORDER_ID,
    PAYMENT_PROCESSOR,
    REFUND_AMOUNT,
    REFUND_CURRENCY,
    REFUND_STATUS,
)

router = APIRouter(tags=["refunds"])
A = TypeVar("A", bound=BaseModel)
StateDep = Annotated[AppState, Depends(state)]
ActorDep = Annotated[str, Depends(actor)]


class AmountBody(BaseModel):
    amount: int = Field(gt=0, description="Minor units (cents).")
    currency: str = Field(pattern="^[A-Za-z]{3}$", description="ISO-4217 code.")


class RefundBody(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"kind": "full", "reason": "customer cannot attend"},
                {"kind": "tickets", "ticket_ids": ["tkt_4f2a9c01"], "reason": "duplicate purchase"},
                {"kind": "amount", "amount": {"amount": 1000, "currency": "EUR"}, "reason": "goodwill: late start"},
            ]
        }
    )

    kind: RefundKind = Field(description="full, tickets (with ticket_ids) or amount (goodwill, tickets stay valid)")
    reason: str = Field(min_length=3, max_length=500)
    ticket_ids: list[str] = Field(default=[], max_length=500)
    amount: AmountBody | None = None

    def request(self) -> RefundRequest:
        money = Money(amount=self.amount.amount, currency=self.amount.currency) if self.amount else None
        return RefundRequest(kind=self.kind, reason=self.reason, ticket_ids=self.ticket_ids, amount=money)


class ConfirmedRefundBody(RefundBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"kind": "full", "reason": "customer cannot attend", "quote_hash": "9f" * 32}]}
    )

    quote_hash: str = Field(min_length=64, max_length=64, description="From the preview: what the agent confirmed.")


class QuotedTicketView(BaseModel):
    ticket_id: str
    amount: MoneyView


class KeptTicketView(BaseModel):
    ticket_id: str
    amount: MoneyView
    reason_type: str = Field(description="Why it is not refunded, e.g. ticket-transferred.")
    reason: str


class QuoteView(BaseModel):
    order_code: str
    kind: str
    amount: MoneyView
    tickets: list[QuotedTicketView]
    kept: list[KeptTicketView] = Field(default=[], description="Tickets of the order this refund does not pay back.")
    fees_kept: MoneyView
    tickets_invalidated: list[str]
    processor: str
    automatic: bool
    needs_approval: bool
    quote_hash: str


class RefundView(BaseModel):
    id: str
    order_code: str
    kind: str
    status: str
    amount: MoneyView
    ticket_ids: list[str]
    fees_kept: MoneyView
    reason: str
    processor: str
    processor_refund_id: str | None
    attempt: int
    failure_reason: str | None
    manual_reference: str | None
    requested_by: str
    approved_by: str | None
    confirmed_by: str | None
    operation_id: str
    waiting_for: str | None = None
    created_at: str
    updated_at: str


class ReferenceBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reference": "SEPA-2026-0042"}]})

    reference: str = Field(min_length=1, max_length=200, description="The payout's bank or voucher reference.")


def refund_view(refund: Refund, waiting_for: str | None = None) -> RefundView:
    return RefundView(
        id=refund.id,
        order_code=refund.order_code,
        kind=refund.kind.value,
        status=refund.status.value,
        amount=MoneyView.of(refund.amount),
        ticket_ids=refund.ticket_ids,
        fees_kept=MoneyView.of(refund.fees_kept),
        reason=refund.reason,
        processor=refund.processor.value,
        processor_refund_id=refund.processor_refund_id,
        attempt=refund.attempt,
        failure_reason=refund.failure_reason,
        manual_reference=refund.manual_reference,
        requested_by=refund.requested_by,
        approved_by=refund.approved_by,
        confirmed_by=refund.confirmed_by,
        operation_id=refund.workflow_id,
        waiting_for=waiting_for,
        created_at=refund.created_at.isoformat(),
        updated_at=refund.updated_at.isoformat(),
    )


async def _quote(st: AppState, code: str, body: RefundBody) -> tuple[RefundQuote, Any, Any]:
    async with st.store.transaction() as conn:
        order = await load_order(conn, code)
        event = await load_event(conn, order.event_id)
    quote = quote_refund(order, event, body.request(), CAPABILITIES[order.payment.processor])
    return quote, order, event


def _quote_view(quote: RefundQuote, needs_approval: bool) -> QuoteView:
    return QuoteView(
        order_code=quote.order_code,
        kind=quote.kind.value,
        amount=MoneyView.of(quote.amount),
        tickets=[QuotedTicketView(ticket_id=q.ticket_id, amount=MoneyView.of(q.amount)) for q in quote.tickets],
        kept=[
            KeptTicketView(ticket_id=k.ticket_id, amount=MoneyView.of(k.amount), reason_type=k.reason_type,
                           reason=k.reason)
            for k in quote.kept
        ],
        fees_kept=MoneyView.of(quote.fees_kept),
        tickets_invalidated=quote.tickets_invalidated,
        processor=quote.processor.value,
        automatic=quote.automatic,
        needs_approval=needs_approval,
        quote_hash=quote.quote_hash,
    )


@router.post("/orders/{code}/refunds/preview", response_model=QuoteView, dependencies=[Depends(FINANCE)])
async def preview_refund(code: str, body: RefundBody, st: StateDep) -> QuoteView:
    """Price the refund; the agent confirms this quote by sending its hash back."""
    quote, _, event = await _quote(st, code.upper(), body)
    return _quote_view(quote, needs_approval(quote, event, st.settings.refunds.approval_threshold))


@router.post(
    "/orders/{code}/refunds",
    status_code=202,
    dependencies=[Depends(FINANCE), Depends(check_idempotency_key), Depends(accepts_wait)],
)
async def request_refund(
    code: str, body: ConfirmedRefundBody, request: Request, st: StateDep, who: ActorDep
) -> JSONResponse:
    """Start the refund exactly as previewed; a changed order is refused (`quote-mismatch`)."""
    code = code.upper()
    timing = st.settings.refunds.timing()

    async def act(key: str) -> dict[str, Any]:
        quote, order, _ = await _quote(st, code, body)
        if quote.quote_hash != body.quote_hash:
            raise ActionNotAllowed(
                "the order or the request changed since the preview; preview again and confirm the new quote",
                type="quote-mismatch",
            )
        operation_id = f"refund/{code}/{key}"
        refund_id = "rf_" + hashlib.sha256(operation_id.encode()).hexdigest()[:16]
        # The 202 comes once the ledger row is open; a request that lost the race to another on the same
        # quote hears the ledger's refusal now (409 amount-exceeds-refundable or quote-mismatch).
        opened = await st.operations.start_with_update(
            RefundWorkflow.run,
            RefundInput(
                order_code=code,
                actor=who,
                refund_id=refund_id,
                kind=quote.kind.value,
                reason=quote.reason,
                ticket_ids=body.ticket_ids,
                amount=body.amount.amount if body.amount else None,
                currency=body.amount.currency if body.amount else None,
                quote_hash=quote.quote_hash,
                timing=timing,
                approval_threshold=st.settings.refunds.approval_threshold,
            ),
            RefundWorkflow.opened,
            operation_id=operation_id,
            search_attributes=[
                SearchAttributePair(ORDER_ID, code),
                SearchAttributePair(EVENT_ID, order.event_id),
                SearchAttributePair(REFUND_STATUS, RefundStatus.REQUESTED.value),
                SearchAttributePair(PAYMENT_PROCESSOR, quote.processor.value),
                SearchAttributePair(REFUND_AMOUNT, quote.amount.amount),
                SearchAttributePair(REFUND_CURRENCY, quote.amount.currency),
            ],
            summary=refund_summary(quote.amount, code, len(quote.tickets_invalidated), quote.kind.value),
            memo={"actor": who, "refund_id": refund_id},
        )
        return {
            "operation_id": operation_id,
            "refund_id": refund_id,
            "status_url": f"/operations/{operation_id}",
            "refund_url": f"/refunds/{refund_id}",
            # "pending": no worker opened the ledger row in time; the run does when one comes.
            "ledger": "opened" if opened is not None else "pending",
        }

    return await idempotent(st.store, request, who, body.model_dump(mode="json") | {"code": code}, act)


@router.get("/refunds", response_model=list[RefundView], dependencies=[Depends(SUPPORT)])
async def find_refunds(
    st: StateDep,
    status: Annotated[RefundStatus | None, Query()] = None,
    event: Annotated[str | None, Query(max_length=64)] = None,
    order: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> list[RefundView]:
    async with st.store.transaction() as conn:
        found = await list_refunds(
            conn, status=status, event_id=event, order_code=order.upper() if order else None, limit=limit, offset=offset
        )
    return [refund_view(r, waiting_for(r.status)) for r in found]


async def _owner(st: AppState, refund: Refund) -> str:
    """The run that acts for the refund now: a follow-up run of its attempt if one runs, else the original."""
    for follow_up in follow_up_workflow_ids(refund.id, refund.attempt):
        if await st.operations.is_running(follow_up):
            return follow_up
    return refund.workflow_id


@router.get("/refunds/{refund_id}", response_model=RefundView, dependencies=[Depends(SUPPORT)])
async def get_refund(refund_id: str, st: StateDep) -> RefundView:
    async with st.store.transaction() as conn:
        refund = await load_refund(conn, refund_id)
    progress = await st.operations.query(await _owner(st, refund), RefundWorkflow.progress)
    return refund_view(refund, (progress.waiting_for if progress else None) or waiting_for(refund.status))


async def _refund_update(
    st: AppState, refund_id: str, update: UpdateMethodMultiParam[[RefundWorkflow, A], Any], arg: A
) -> RefundView:
    async with st.store.transaction() as conn:
        refund = await load_refund(conn, refund_id)
    await st.operations.update(await _owner(st, refund), update, arg)
    async with st.store.transaction() as conn:
        return refund_view(await load_refund(conn, refund_id))


async def _not_paid_by_processor(st: AppState, refund_id: str) -> None:
    """Ask the processor, as a (re)submission would (`earlier_refund`), before finance pays a refund-error by hand."""
    async with st.store.transaction() as conn:
        refund = await load_refund(conn, refund_id)
        order = await load_order(conn, refund.order_code)
    adapter = st.payments.get(refund.processor)
    if refund.status is not RefundStatus.FAILED or adapter is None or not order.payment.reference:
        return
    try:
        found = await earlier_refund(
            adapter, payment_reference=order.payment.reference, refund_id=refund.id,
            idempotency_key=refund.idempotency_key,
        )
    except ProcessorUnavailable as err:
        detail = f"could not ask the processor whether it paid this refund ({err.code}); try again"
        raise ProblemError(503, "processor-unavailable", detail) from err
    if found is not None and found.status not in ("failed", "canceled"):  # paid, or may still pay
        raise ProblemError(
            409,
            "processor-refund-exists",
            f"the processor's refund {found.id} is {found.status}: retry the refund, which adopts it and pays "
            "nothing again, instead of paying by hand",
            processor_refund_id=found.id,
            processor_status=found.status,
        )


@router.post("/refunds/{refund_id}/retry", response_model=RefundView, dependencies=[Depends(FINANCE)])
async def retry_refund(refund_id: str, st: StateDep, who: ActorDep) -> RefundView:
    """A new processor attempt, with a new idempotency key, for a refund in refund-error.

    The processor is asked first: a refund of an earlier attempt that it paid after all (or may still
    pay) is adopted, so the buyer is never paid twice; only when none did is a new refund made. A retry
    the ledger refuses (`amount-exceeds-refundable`: the amount went to another refund) is a 409 and the
    run waits in refund-error as it was (its own answer, if the order changes in between, is the same)."""
    await _ledger_allows(st, refund_id, RefundAction.RETRY, who)
    return await _refund_update(st, refund_id, RefundWorkflow.retry, RetryRefund(actor=who))


async def _ledger_allows(st: AppState, refund_id: str, action: RefundAction, who: str, reference: str = "") -> None:
    """The ledger's rule (`refund_ledger.apply`), tried on a refund-error as it is now, before its run is asked:
    a refusal (e.g. `amount-exceeds-refundable`) is a 409 and the run is left waiting as it was."""
    async with st.store.transaction() as conn:
        refund = await load_refund(conn, refund_id)
        order = await load_order(conn, refund.order_code)
    if refund.status is RefundStatus.FAILED:  # any other status: the run's validator answers
        refund_ledger.apply(
            order, refund, action, actor=who, now=datetime.now(UTC), reference=reference or None
        )


@router.post("/refunds/{refund_id}/mark-refunded", response_model=RefundView, dependencies=[Depends(FINANCE)])
async def mark_refunded(refund_id: str, body: ReferenceBody, st: StateDep, who: ActorDep) -> RefundView:
    """Finance paid the customer outside the processor (manual methods, or after a refund-error).

    A refund-error whose processor refund paid, or may still pay, is refused (`processor-refund-exists`):
    a retry adopts that refund and pays nothing; a payout by hand would pay the buyer twice.
    """
    await _not_paid_by_processor(st, refund_id)
    await _ledger_allows(st, refund_id, RefundAction.SUCCEEDED, who, body.reference)
    return await _refund_update(
        st, refund_id, RefundWorkflow.mark_refunded, MarkRefunded(actor=who, reference=body.reference)
    )


@router.post("/refunds/{refund_id}/approve", response_model=RefundView, dependencies=[Depends(FINANCE)])
async def approve_refund(refund_id: str, st: StateDep, who: ActorDep) -> RefundView:
    """Four eyes: a refund above the threshold is approved by another finance user."""
    return await _refund_update(st, refund_id, RefundWorkflow.approve, ApproveRefund(actor=who))
