"""Ways to make the processor disagree with the ledger, as production sometimes does.

Each is what Stripe itself would record, made on purpose: a refund made in
the Dashboard, a late failure nobody is told about, a webhook that never
arrives, a second refund under a key Stripe has forgotten. `StripeServer`
hooks and the admin endpoint (`admin.py`) both call these, so a test, a soak
or a running `make dev` flip the same switches.
"""

from __future__ import annotations

from typing import Any

from . import balance
from .events import emit
from .refunds import create_refund, get_refund, schedule_failure, settle_due
from .state import RequestContext, ServerState, WebhookDrop, WebhookFate, public
from .store import new_id


def dashboard_refund(
    state: ServerState,
    payment_intent: str,
    *,
    amount: int | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A refund made outside ticketops (the Dashboard, another integration) on a payment.

    No idempotency key, and `metadata` as given (none by default, or a foreign
    integration's). Its webhooks are sent as usual. Stripe's limits hold: it
    cannot refund more than the charge has left.
    """
    params: dict[str, Any] = {"payment_intent": payment_intent, "metadata": dict(metadata or {})}
    if amount is not None:
        params["amount"] = amount
    return public(create_refund(state, params, RequestContext(request_id=new_id("req"))))


def duplicate_refund(state: ServerState, refund_id: str, *, amount: int | None = None) -> dict[str, Any]:
    """A second refund with the same metadata (our idempotency key included) on the same charge.

    What a retry makes once Stripe has forgotten the idempotency key (after
    24 hours): nothing links the two but the metadata. The charge must have
    enough left unrefunded, as on Stripe (so duplicate a partial refund).
    """
    original = get_refund(state, refund_id)
    metadata = dict(original.get("metadata") or {})
    params: dict[str, Any] = {
        "charge": original["charge"],
        "amount": original["amount"] if amount is None else amount,
        "metadata": metadata,
    }
    ctx = RequestContext(request_id=new_id("req"), idempotency_key=metadata.get("idempotency_key"))
    return public(create_refund(state, params, ctx))


def fail_refund(
    state: ServerState,
    refund_id: str,
    reason: str = "expired_or_canceled_card",
    *,
    after_seconds: float = 0.0,
    webhook: WebhookFate = "send",
) -> dict[str, Any]:
    """A pending or succeeded refund fails (money back to the charge, a `refund_failure` entry).

    webhook "send": `refund.failed` & co. are delivered as usual. "acknowledged":
    a silent late failure: the events exist in `/v1/events` and count as
    delivered, but nothing is sent (as if our endpoint answered 200 and lost
    them). "dropped": recorded, never sent, listed under `delivery_success=false`.
    Returns the refund as it is after the call (still unchanged if `after_seconds` > 0).
    """
    schedule_failure(state, refund_id, reason, after_seconds, webhook=webhook)
    return public(get_refund(state, refund_id))


STRAY_TYPES = ("refund", "refund_failure")


def stray_balance_transaction(
    state: ServerState, refund_id: str, *, type: str = "refund_failure", amount: int | None = None
) -> dict[str, Any]:
    """A balance transaction on a refund that the refund itself does not show: money moved that no
    refund accounts for (a credit back on a refund that still succeeded, or a second debit).

    The refund is unchanged (status, `balance_transaction`, `failure_balance_transaction`); the
    entry is listed under `/v1/balance_transactions` with `source` the refund. `amount` is signed
    as Stripe signs it; by default the refund's amount, out for `refund`, back for `refund_failure`.
    """
    if type not in STRAY_TYPES:
        raise ValueError(f"type must be one of {STRAY_TYPES}")
    with state.store.transaction():
        refund = get_refund(state, refund_id)
        if amount is None:
            amount = int(refund["amount"]) * (1 if type == "refund_failure" else -1)
        return balance.record(
            state, new_id("txn"), type=type, amount=amount, currency=refund["currency"], source=refund_id,
            description="STRAY BALANCE TRANSACTION",
        )


PENDING_REASONS = ("processing", "insufficient_funds", "charge_pending")


def hold_refund_pending(
    state: ServerState, refund_id: str, pending_reason: str = "insufficient_funds"
) -> dict[str, Any]:
    """Keep a pending refund pending (with this `pending_reason`) until `release_refund`.

    Stripe holds a refund while the balance cannot cover it; a test that moves
    the clock past the confirmation window needs one that does not settle.
    """
    if pending_reason not in PENDING_REASONS:
        raise ValueError(f"pending_reason must be one of {PENDING_REASONS}")
    with state.store.transaction():
        refund = get_refund(state, refund_id)
        if refund["status"] != "pending":
            raise ValueError(f"refund {refund_id} is {refund['status']}, not pending")
        state.store.unschedule(refund_id, "succeed")
        if refund.get("pending_reason") != pending_reason:
            previous = {"pending_reason": refund.get("pending_reason")}
            refund["pending_reason"] = pending_reason
            state.store.put(refund)
            emit(state, "refund.updated", refund, previous=previous)
            emit(state, "charge.refund.updated", refund, previous=previous)
    return public(refund)


def release_refund(state: ServerState, refund_id: str, *, after_seconds: float = 0.0) -> dict[str, Any]:
    """Let a held (or any pending) refund succeed `after_seconds` from now."""
    with state.store.transaction():
        refund = get_refund(state, refund_id)
        if refund["status"] != "pending":
            raise ValueError(f"refund {refund_id} is {refund['status']}, not pending")
        state.store.schedule(refund_id, "succeed", state.clock() + after_seconds)
    settle_due(state)
    state.wake()
    return public(get_refund(state, refund_id))


def drop_webhooks(
    state: ServerState,
    count: int | None = 1,
    *,
    types: list[str] | None = None,
    object_id: str | None = None,
) -> None:
    """The next `count` events (None: all, until cleared) matching are recorded but never sent.

    `types` may end in `*` (`refund.*`); `object_id` matches the event's
    `data.object.id` (a refund, a charge). Such events stay undelivered and are
    listed under `delivery_success=false`, as when Stripe gave up retrying.
    """
    if count is not None and count < 1:
        raise ValueError("count must be >= 1 (or None for every matching event)")
    state.drop_webhooks(WebhookDrop(remaining=count, types=tuple(types) if types else None, object_id=object_id))


def forget_idempotency_keys(state: ServerState) -> int:
    """Forget every saved idempotent answer now, as Stripe does after 24 hours; returns how many."""
    return state.store.prune_results(float("inf"))


def resend_event(state: ServerState, event_id: str) -> None:
    """One more delivery attempt of an event to the endpoint (the Dashboard's "Resend")."""
    if state.store.get("event", event_id) is None:
        raise KeyError(event_id)
    state.store.redeliver(event_id, state.webhook_url, state.clock())
    state.wake()


def reset(state: ServerState) -> None:
    """Every switch back to the server's configuration: faults, limits, latency, drops, clock."""
    cfg = state.config
    state.set_faults(cfg.fault_rate, cfg.fault_mode, cfg.seed, delay_seconds=cfg.fault_delay_seconds)
    state.set_rate_limit(cfg.rate_limit_per_second)
    state.latency_ms = cfg.latency_ms
    state.clear_webhook_drops()
    state.set_clock()
    settle_due(state)
