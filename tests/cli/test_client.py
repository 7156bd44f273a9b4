"""The CLI's pure parts: problem lines, amounts in minor units, and a failed operation's outcome."""

from __future__ import annotations

import pytest

from backoffice.cli.client import CliFailure, path, problem_failure, to_minor
from backoffice.cli.operations_cmds import show_outcome


def test_problems_become_one_line_with_the_type_slug_and_an_exit_code() -> None:
    refused = problem_failure(409, {"type": "https://ticketops.dev/problems/order-cancelled", "detail": "it is"})
    assert (refused.label, refused.message, refused.code) == ("order-cancelled", "it is", 2)
    invalid = problem_failure(422, {"type": "x/validation-error", "detail": "not valid",
                                    "errors": [{"loc": ["body", "reason"], "msg": "too short"}]})
    assert invalid.message == "not valid (body.reason: too short)"
    broken = problem_failure(502, "<html>bad gateway</html>")
    assert (broken.label, broken.code) == ("http-502", 1)


def test_amounts_are_exact_minor_units_in_the_orders_currency() -> None:
    assert to_minor("12.50", "EUR") == 1250
    assert to_minor("1500", "JPY") == 1500
    assert to_minor("1.234", "KWD") == 1234
    for bad, currency in (("12.505", "EUR"), ("12.5", "JPY"), ("0", "EUR"), ("-3", "EUR"), ("abc", "EUR"),
                          ("nan", "EUR")):
        with pytest.raises(CliFailure):
            to_minor(bad, currency)


def test_a_failed_operation_is_its_problem_and_exit_2() -> None:
    with pytest.raises(CliFailure) as info:
        show_outcome({"operation_id": "refund/A/k", "status": "failed",
                      "error": {"type": "quote-mismatch", "detail": "preview again"}})
    assert (info.value.label, info.value.message, info.value.code) == ("quote-mismatch", "preview again", 2)
    with pytest.raises(CliFailure) as still:
        show_outcome({"operation_id": "refund/A/k", "status": "running", "details": "Waiting for finance"})
    assert still.value.code == 3 and "Waiting for finance" in still.value.message


def test_each_path_segment_is_quoted_whole() -> None:
    assert path("orders", "A1", "refunds") == "/orders/A1/refunds"
    assert path("orders", "../A B?") == "/orders/..%2FA%20B%3F"
