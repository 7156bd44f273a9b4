"""Balance transactions: every movement of money on the account, as Stripe records it.

- A captured charge adds a `charge` entry (positive, less Stripe's fee).
- A refund takes its amount out when it is created, pending or not: a `refund`
  entry (negative, no fee) whose id is the refund's `balance_transaction`.
- A refund that fails after that puts the money back: a `refund_failure` entry
  (positive) whose id is the refund's `failure_balance_transaction`.

`source` is the charge or refund id (Stripe's behaviour since API 2015-08-19).
There are no payouts here, so the `payout` filter only ever names a missing one.
Amounts stay in the charge's currency: this account settles in every currency
(real Stripe converts into the settlement currency and sets `exchange_rate`).
"""

from __future__ import annotations

from typing import Any

from . import params as p
from .errors import no_such
from .listing import list_object
from .state import ServerState

# Stripe's standard card pricing: 2.9 % + 30 minor units (zero on refunds).
_FEE_PERMILLE = 29
_FEE_FIXED = 30


def record(
    state: ServerState,
    txn_id: str,
    *,
    type: str,
    amount: int,
    currency: str,
    source: str,
    fee: int = 0,
    description: str | None = None,
) -> dict[str, Any]:
    """Write one balance transaction (inside the caller's transaction)."""
    now = int(state.clock())
    txn: dict[str, Any] = {
        "id": txn_id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": now,
        "balance_type": "payments",
        "created": now,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": (
            [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else []
        ),
        "net": amount - fee,
        "reporting_category": type,  # charge, refund and refund_failure are their own categories
        "source": source,
        "status": "available",
        "type": type,
    }
    state.store.put(txn)
    return txn


def record_charge(state: ServerState, charge: dict[str, Any]) -> dict[str, Any]:
    amount = int(charge["amount"])
    fee = amount * _FEE_PERMILLE // 1000 + _FEE_FIXED
    return record(
        state,
        charge["balance_transaction"],
        type="charge",
        amount=amount,
        currency=charge["currency"],
        source=charge["id"],
        fee=min(fee, amount),
        description=charge.get("description"),
    )


def record_refund(state: ServerState, refund: dict[str, Any]) -> dict[str, Any]:
    return record(
        state,
        refund["balance_transaction"],
        type="refund",
        amount=-int(refund["amount"]),
        currency=refund["currency"],
        source=refund["id"],
        description="REFUND FOR CHARGE",
    )


def record_refund_failure(state: ServerState, refund: dict[str, Any]) -> dict[str, Any]:
    return record(
        state,
        refund["failure_balance_transaction"],
        type="refund_failure",
        amount=int(refund["amount"]),
        currency=refund["currency"],
        source=refund["id"],
        description="REFUND FAILURE",
    )


def get(state: ServerState, txn_id: str) -> dict[str, Any]:
    txn = state.store.get("balance_transaction", txn_id)
    if txn is None:
        raise no_such("balance transaction", txn_id)
    return txn


def list_transactions(state: ServerState, params: dict[str, Any]) -> dict[str, Any]:
    """`GET /v1/balance_transactions`: filters `type`, `source`, `currency`, `payout`, `created`."""
    payout = p.get_str(params, "payout")
    if payout:
        raise no_such("payout", payout, param="payout")
    equals = {k: v for k in ("source", "currency") if (v := p.get_str(params, k))}
    if "currency" in equals:
        equals["currency"] = equals["currency"].lower()
    kind = p.get_str(params, "type")
    return list_object(
        state,
        "balance_transaction",
        "/v1/balance_transactions",
        params,
        equals=equals or None,
        types=[kind] if kind else None,
    )
