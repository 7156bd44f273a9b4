"""Refunds and their asynchronous life cycle, as Stripe documents it for test cards.

- `pm_card_visa` (and other plain cards): the refund is `succeeded` at once.
- `pm_card_pendingRefund`: the refund is `pending` (pending_reason `processing`)
  and becomes `succeeded` after `pending_refund_settle_seconds`.
- `pm_card_refundFail`: Stripe's testing guide says the refund "will appear to
  be successful at first" and fails asynchronously with failure_reason
  `expired_or_canceled_card`; so it is created `succeeded` and turns `failed`
  after `refund_fail_after_seconds`, with `refund.failed`, `refund.updated` and
  `charge.refund.updated` events.

A charge's `amount_refunded` counts pending and succeeded refunds; a failed (or
canceled) refund gives its amount back, so it can be refunded again.
Transitions are scheduled rows applied by `settle_due`, both lazily before
reads and by the background task (which is what emits their webhooks promptly).
"""

from __future__ import annotations

from typing import Any, cast

from . import balance
from . import params as p
from .errors import StripeError, format_money, invalid_param, no_such
from .events import emit
from .payments import get_charge, get_payment_intent
from .state import RequestContext, ServerState, WebhookFate
from .store import new_id

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
FAILURE_REASONS = ("expired_or_canceled_card", "lost_or_stolen_card", "unknown")


def create_refund(
    state: ServerState,
    params: dict[str, Any],
    ctx: RequestContext,
) -> dict[str, Any]:
    charge_id = p.get_str(params, "charge")
    intent_id = p.get_str(params, "payment_intent")
    if not charge_id and not intent_id:
        raise StripeError(
            400,
            "One of the following params should be provided for this request: payment_intent or charge.",
            code="parameter_missing",
            stored=False,
        )
    amount = p.get_int(params, "amount")
    reason = p.get_str(params, "reason")
    if reason and reason not in REASONS:
        raise invalid_param("reason", "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer")
    if amount is not None and amount < 1:
        raise invalid_param("amount", "This value must be greater than or equal to 1.")
    with state.store.transaction():
        settle_due(state)
        charge = _charge_for(state, charge_id, intent_id)
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            raise StripeError(400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
        if amount is None:
            amount = remaining
        if amount > remaining:
            raise StripeError(
                400,
                f"Refund amount ({format_money(amount, charge['currency'])}) is greater "
                f"than unrefunded amount on charge ({format_money(remaining, charge['currency'])})",
                code="amount_too_large",
                param="amount",
            )
        behaviour = charge.get("_behaviour", "normal")
        now = state.clock()
        refund: dict[str, Any] = {
            "id": new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": new_id("txn"),
            "charge": charge["id"],
            "created": int(now),
            "currency": charge["currency"],
            "customer": charge["customer"],
            "description": None,
            "destination_details": {
                "type": "card",
                "card": {
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                },
            },
            "metadata": p.get_metadata(params) or {},
            "payment_intent": charge["payment_intent"],
            "payment_method": charge["payment_method"],
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        if behaviour == "pending_refund":
            refund.update(status="pending", pending_reason="processing")
            state.store.schedule(refund["id"], "succeed", now + state.config.pending_refund_settle_seconds)
        elif behaviour == "refund_fail":
            state.store.schedule(
                refund["id"], "fail", now + state.config.refund_fail_after_seconds, "expired_or_canceled_card"
            )
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        state.store.put(refund)
        state.store.put(charge)
        balance.record_refund(state, refund)
        emit(state, "refund.created", refund, ctx=ctx)
        emit(state, "charge.refunded", charge, previous=previous, ctx=ctx)
    return refund


def update_refund(state: ServerState, refund_id: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
    """Only `metadata` can change; keys sent empty are removed, as on Stripe."""
    extra = sorted(set(params) - {"metadata", "expand"})
    if extra:
        raise StripeError(
            400, f"Received unknown parameter: {extra[0]}", code="parameter_unknown", param=extra[0], stored=False
        )
    changes = p.get_metadata(params)
    with state.store.transaction():
        refund = get_refund(state, refund_id)
        if changes is None:
            return refund
        before = dict(refund["metadata"])
        merged = {} if not changes else {**before, **changes}
        refund["metadata"] = {k: v for k, v in merged.items() if v != ""}
        if refund["metadata"] != before:
            state.store.put(refund)
            emit(state, "refund.updated", refund, previous={"metadata": before}, ctx=ctx)
            emit(state, "charge.refund.updated", refund, previous={"metadata": before}, ctx=ctx)
    return refund


def cancel_refund(state: ServerState, refund_id: str, ctx: RequestContext) -> dict[str, Any]:
    """Stripe cancels only `requires_action` refunds, which card refunds never are."""
    with state.store.transaction():
        refund = get_refund(state, refund_id)
        if refund["status"] != "requires_action":
            raise StripeError(
                400,
                f"Refund {refund_id} cannot be canceled because it has a "
                f"status of {refund['status']}. Only refunds with a status of "
                "requires_action can be canceled.",
            )
        _close(state, refund, "canceled", None, ctx)
    return refund


def get_refund(state: ServerState, refund_id: str) -> dict[str, Any]:
    with state.store.transaction():
        settle_due(state)
        refund = state.store.get("refund", refund_id)
    if refund is None:
        raise no_such("refund", refund_id)
    return refund


def schedule_failure(
    state: ServerState,
    refund_id: str,
    reason: str,
    after_seconds: float,
    *,
    webhook: WebhookFate = "send",
) -> None:
    """Make a pending or succeeded refund fail later (a late failure, as banks report).

    `webhook` is what becomes of the failure's events: "send" them as usual,
    "acknowledged" (a silent failure: recorded, looking delivered, never sent)
    or "dropped" (recorded, never sent, listed as undelivered).
    """
    if reason not in FAILURE_REASONS:
        raise ValueError(f"failure reason must be one of {FAILURE_REASONS}")
    if webhook not in ("send", "acknowledged", "dropped"):
        raise ValueError("webhook must be send, acknowledged or dropped")
    with state.store.transaction():
        refund = get_refund(state, refund_id)
        if refund["status"] not in ("pending", "succeeded"):
            raise ValueError(f"refund {refund_id} is {refund['status']}, it cannot fail")
        state.store.unschedule(refund_id)
        action = "fail" if webhook == "send" else f"fail:{webhook}"
        state.store.schedule(refund_id, action, state.clock() + after_seconds, reason)
    if after_seconds <= 0:
        settle_due(state)
    state.wake()


def settle_due(state: ServerState) -> list[dict[str, Any]]:
    """Apply every scheduled transition that is due; returns the refunds changed."""
    changed: list[dict[str, Any]] = []
    with state.store.transaction():
        for due in state.store.due_transitions(state.clock()):
            state.store.unschedule(due.refund_id, due.action)
            refund = state.store.get("refund", due.refund_id)
            if refund is None or refund["status"] not in ("pending", "succeeded"):
                continue
            if due.action == "succeed" and refund["status"] == "pending":
                previous = {"status": "pending", "pending_reason": refund.pop("pending_reason", None)}
                refund["status"] = "succeeded"
                state.store.put(refund)
                emit(state, "refund.updated", refund, previous=previous)
                emit(state, "charge.refund.updated", refund, previous=previous)
                changed.append(refund)
            elif due.action.startswith("fail"):
                fate = cast(WebhookFate | None, due.action.partition(":")[2] or None)
                with state.events_fate(fate):
                    _close(state, refund, "failed", due.reason or "unknown", None)
                changed.append(refund)
    return changed


def _close(
    state: ServerState, refund: dict[str, Any], status: str, failure_reason: str | None, ctx: RequestContext | None
) -> None:
    """End a refund without moving money: failed or canceled; the charge gets it back."""
    previous: dict[str, Any] = {"status": refund["status"]}
    refund["status"] = status
    if "pending_reason" in refund:
        previous["pending_reason"] = refund.pop("pending_reason")
    if status == "failed":
        previous.update(failure_reason=None, failure_balance_transaction=None)
        refund["failure_reason"] = failure_reason
        refund["failure_balance_transaction"] = new_id("txn")
        balance.record_refund_failure(state, refund)
    charge = state.store.get("charge", refund["charge"])
    if charge is not None:
        charge["amount_refunded"] = max(0, charge["amount_refunded"] - refund["amount"])
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        state.store.put(charge)
    state.store.unschedule(refund["id"])
    state.store.put(refund)
    if status == "failed":
        emit(state, "refund.failed", refund, previous=previous, ctx=ctx)
    emit(state, "refund.updated", refund, previous=previous, ctx=ctx)
    emit(state, "charge.refund.updated", refund, previous=previous, ctx=ctx)


def _charge_for(
    state: ServerState,
    charge_id: str | None,
    intent_id: str | None,
) -> dict[str, Any]:
    if charge_id:
        charge = get_charge(state, charge_id, param="charge", status=400)
        if intent_id and charge["payment_intent"] != intent_id:
            raise StripeError(
                400, f"The charge {charge_id} does not belong to the PaymentIntent {intent_id}.", param="charge"
            )
        return charge
    assert intent_id is not None
    intent = get_payment_intent(state, intent_id, param="payment_intent", status=400)
    latest = state.store.get("charge", intent["latest_charge"] or "")
    if latest is None or latest["status"] != "succeeded":
        raise StripeError(
            400,
            f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
            code="charge_not_refundable",
            param="payment_intent",
        )
    return latest
