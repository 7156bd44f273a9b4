"""Email templates: every one renders, HTML is escaped, missing variables fail loudly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from jinja2 import UndefinedError

from documents.branding import Branding
from documents.email_templates import TEMPLATES, render_email
from tests.documents.contexts import CONTEXTS

HOSTILE = '<script>alert("x")</script> & Co'


def test_every_template_has_a_test_context() -> None:
    assert set(CONTEXTS) == set(TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES)
def test_renders_subject_text_and_html(template: str) -> None:
    rendered = render_email(template, CONTEXTS[template])
    assert rendered.subject
    assert "\n" not in rendered.subject
    assert "A1B2C3" in rendered.text or template in ("custom_message", "finance_reconciliation")
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert "{{" not in rendered.text + rendered.html
    assert "<" not in rendered.text  # plain text is not HTML


def _with_hostile_strings(context: dict[str, Any]) -> dict[str, Any]:
    return {key: HOSTILE if isinstance(value, str) else value for key, value in context.items()}


@pytest.mark.parametrize("template", TEMPLATES)
def test_html_escapes_input_and_text_keeps_it(template: str) -> None:
    rendered = render_email(template, _with_hostile_strings(CONTEXTS[template]))
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert HOSTILE in rendered.text


@pytest.mark.parametrize(
    ("template", "missing"),
    [(template, key) for template in TEMPLATES for key in CONTEXTS[template]],
)
def test_missing_variable_raises(template: str, missing: str) -> None:
    context = {key: value for key, value in CONTEXTS[template].items() if key != missing}
    with pytest.raises(UndefinedError):
        render_email(template, context)


def test_missing_variable_inside_a_list_item_raises() -> None:
    context = dict(CONTEXTS["tickets"], tickets=[{"ticket_type": "Adult", "ticket_code": "A1B2C3-1"}])
    with pytest.raises(UndefinedError):
        render_email("tickets", context)


def test_unknown_template_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown email template"):
        render_email("../etc/passwd", {})


def test_tickets_email_lists_every_ticket() -> None:
    text = render_email("tickets", CONTEXTS["tickets"]).text
    assert "2 tickets" in text
    assert "Adult, for Ada Lovelace (ticket A1B2C3-1)" in text
    assert "Child, 20:00 entry (ticket A1B2C3-2)" in text
    assert "Saturday 14 March 2026, 20:00" in text


def test_tickets_at_different_times_each_show_their_own() -> None:
    late = datetime(2026, 3, 14, 22, 30, tzinfo=UTC)
    tickets = [dict(CONTEXTS["tickets"]["tickets"][0]), dict(CONTEXTS["tickets"]["tickets"][1], event_starts_at=late)]
    text = render_email("tickets", dict(CONTEXTS["tickets"], event_starts_at=None, tickets=tickets)).text
    assert "When:" not in text
    assert "Adult, Saturday 14 March 2026, 20:00, for Ada Lovelace" in text
    assert "Child, 20:00 entry, Saturday 14 March 2026, 22:30 (ticket A1B2C3-2)" in text


def test_branding_names_the_organiser_and_reply_to() -> None:
    brand = Branding(name="Jazz & Co", colour="#aa0033", reply_to="help@jazz.example")
    html = render_email("tickets", CONTEXTS["tickets"], brand).html
    assert "Jazz &amp; Co" in html
    assert "background:#aa0033" in html
    assert "help@jazz.example" in html


def test_custom_message_names_the_event_and_its_date() -> None:
    rendered = render_email("custom_message", CONTEXTS["custom_message"])
    assert rendered.text.startswith("About Spring Gala, Saturday 14 March 2026, 20:00\n")
    assert "About <strong>Spring Gala</strong>, Saturday 14 March 2026, 20:00" in rendered.html


def test_refund_failed_tells_the_buyer_in_plain_words() -> None:
    rendered = render_email("refund_failed", CONTEXTS["refund_failed"])
    assert rendered.subject == "Your refund for order A1B2C3 did not go through"
    assert "Your card has expired or was cancelled" in rendered.text
    assert "card ending 4242" in rendered.text
    assert "Your tickets are valid again" in rendered.text


def test_finance_refund_error_names_refund_order_and_reason() -> None:
    rendered = render_email("finance_refund_error", CONTEXTS["finance_refund_error"])
    assert rendered.subject == "Refund R-9 on order A1B2C3 failed"
    assert "failed: charge_already_refunded" in rendered.text


def test_custom_message_body_becomes_escaped_paragraphs() -> None:
    context = dict(CONTEXTS["custom_message"], body="Line <1>\nline 2\n\nSecond")
    rendered = render_email("custom_message", context)
    assert rendered.subject == "Doors open earlier"
    assert "<p>Line &lt;1&gt;<br>\nline 2</p>\n<p>Second</p>" in rendered.html
    assert "Line <1>\nline 2\n\nSecond" in rendered.text


def test_optional_values_may_be_none() -> None:
    context = dict(CONTEXTS["cancellation"], reason=None, refund_total=None, buyer_name=None)
    text = render_email("cancellation", context).text
    assert "has been cancelled." in text
    assert "refund" not in text.lower()
