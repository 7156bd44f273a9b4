"""Every allowed and every refused transition of every state machine.

The expected edges are written out here, independently of the tables, so a
changed table fails until this spec is changed with it.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ticketing.errors import InvalidTransition
from ticketing.states import (
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    REFUND_TRANSITIONS,
    SCAN_TRANSITIONS,
    TICKET_TRANSITIONS,
    OrderStatus,
    PaymentStatus,
    RefundStatus,
    ScanState,
    TicketState,
    transition,
)

O, P, R, T, S = OrderStatus, PaymentStatus, RefundStatus, TicketState, ScanState

ALLOWED: dict[str, tuple[Any, set[tuple[Any, Any]]]] = {
    "order": (
        ORDER_TRANSITIONS,
        {
            (O.RESERVED, O.PAID),
            (O.RESERVED, O.EXPIRED),
            (O.RESERVED, O.CANCELLED),
            (O.PAID, O.CANCELLED),
            (O.PAID, O.REFUNDED),
            (O.REFUNDED, O.PAID),
            (O.REFUNDED, O.CANCELLED),
        },
    ),
    "payment": (
        PAYMENT_TRANSITIONS,
        {(P.PENDING, P.SUCCEEDED), (P.PENDING, P.FAILED), (P.PENDING, P.VOIDED)},
    ),
    "refund": (
        REFUND_TRANSITIONS,
        {
            (R.REQUESTED, R.AWAITING_APPROVAL),
            (R.REQUESTED, R.AWAITING_MANUAL),
            (R.REQUESTED, R.REFUNDING),
            (R.REQUESTED, R.SUCCEEDED),
            (R.AWAITING_APPROVAL, R.REFUNDING),
            (R.AWAITING_APPROVAL, R.AWAITING_MANUAL),
            (R.AWAITING_APPROVAL, R.REJECTED),
            (R.AWAITING_MANUAL, R.SUCCEEDED),
            (R.AWAITING_MANUAL, R.REJECTED),
            (R.REFUNDING, R.CONFIRMING),
            (R.REFUNDING, R.SUCCEEDED),
            (R.REFUNDING, R.FAILED),
            (R.CONFIRMING, R.SUCCEEDED),
            (R.CONFIRMING, R.FAILED),
            (R.FAILED, R.REFUNDING),
            (R.FAILED, R.SUCCEEDED),
            (R.SUCCEEDED, R.FAILED),
        },
    ),
    "ticket": (
        TICKET_TRANSITIONS,
        {
            (T.VALID, T.CANCELLED),
            (T.VALID, T.REFUNDED),
            (T.VALID, T.TRANSFERRED),
            (T.VALID, T.REISSUED),
            (T.VALID, T.BLACKLISTED),
            (T.REFUNDED, T.VALID),
            (T.REFUNDED, T.CANCELLED),
            (T.BLACKLISTED, T.VALID),
            (T.BLACKLISTED, T.CANCELLED),
            (T.BLACKLISTED, T.REFUNDED),
        },
    ),
    "scan": (
        SCAN_TRANSITIONS,
        {
            (S.UNSCANNED, S.SCANNED_IN),
            (S.SCANNED_IN, S.SCANNED_OUT),
            (S.SCANNED_IN, S.UNSCANNED),
            (S.SCANNED_OUT, S.SCANNED_IN),
            (S.SCANNED_OUT, S.UNSCANNED),
        },
    ),
}


def _cases() -> list[tuple[str, Any, Any, bool]]:
    cases = []
    for what, (table, allowed) in ALLOWED.items():
        states = list(table)
        for a, b in itertools.product(states, states):
            cases.append((what, a, b, (a, b) in allowed))
    return cases


@pytest.mark.parametrize(("what", "current", "target", "allowed"), _cases())
def test_transition(what: str, current, target, allowed: bool) -> None:
    table = ALLOWED[what][0]
    if allowed:
        assert transition(table, current, target, what=what) is target
    else:
        with pytest.raises(InvalidTransition) as info:
            transition(table, current, target, what=what)
        assert info.value.type == f"invalid-{what}-transition"
        assert current.value in info.value.detail


def test_every_state_has_a_row() -> None:
    for enum, table in ((O, ORDER_TRANSITIONS), (R, REFUND_TRANSITIONS), (T, TICKET_TRANSITIONS)):
        assert set(table) == set(enum)


def test_ticket_reason() -> None:
    assert T.VALID.reason is None
    assert T.REISSUED.reason == "reissued"
    assert not T.BLACKLISTED.is_valid
