"""Email bodies from Jinja2 templates: one plain-text and one HTML file per email.

The subject is the `subject` variable set at the top of the text template, so the wording of
an email lives in one folder. Undefined variables raise (StrictUndefined): a typo in the
caller's context fails the activity loudly instead of mailing a customer a blank. Optional
values must still be passed, as None.

Context of each template (`*_display`, totals and amounts are formatted money strings;
datetimes are printed in their own timezone):

- tickets: order_code, event_name, event_starts_at|None (None: the tickets' times differ, each
  ticket line shows its own), venue|None, buyer_name|None,
  tickets: [{ticket_type, holder_name|None, time_slot_label|None, ticket_code, event_starts_at}]
- refund_receipt: order_code, event_name, buyer_name|None, refund_total, payment_method,
  lines: [{description, amount_display}], expected_arrival|None ("5 to 10 business days")
- cancellation: order_code, event_name, event_starts_at, buyer_name|None, reason|None,
  refund_total|None
- personalisation_link: order_code, event_name, buyer_name|None, link, expires_at|None
- payment_receipt: order_code, event_name, buyer_name|None, issued_at, total_display,
  payment_method, lines: [{description, quantity, total_display}]
- finance_refund_error: order_code, refund_id, amount_display, payment_method, reason,
  failed_at, workflow_id|None
- finance_manual_refund_reminder: order_code, refund_id, amount_display, payment_method,
  requested_at, days_waiting, workflow_id|None
- finance_reconciliation: processor, window_label, run_id, items, open_items, healed,
  by_class: [{kind, count}], totals: [{currency, processor_display, ledger_display,
  difference_display}], report_csv, report_json
- custom_message: subject, body (plain text; blank lines separate paragraphs),
  buyer_name|None, order_code|None, event_name, event_starts_at
- refund_failed: order_code, event_name, buyer_name|None, refund_total, payment_method,
  reason (in a buyer's words), tickets_valid_again (bool)

Every template also gets `brand` (documents.branding.Branding: name, colour, reply_to),
passed apart from the context so that callers cannot forget it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict

from documents.branding import Branding
from documents.formatting import format_date, format_datetime

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATES: tuple[str, ...] = (
    "tickets",
    "refund_receipt",
    "cancellation",
    "personalisation_link",
    "payment_receipt",
    "finance_refund_error",
    "finance_manual_refund_reminder",
    "custom_message",
    "finance_reconciliation",
    "refund_failed",
)


class RenderedEmail(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str
    text: str
    html: str


def _paragraphs(text: str) -> Markup:
    """Plain text to escaped HTML paragraphs; single newlines become <br>."""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", text.strip()) if block.strip()]
    line_break = Markup("<br>\n")
    return Markup("\n").join(
        Markup("<p>{}</p>").format(line_break.join(escape(line) for line in block.split("\n")))
        for block in blocks
    )


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["datetime"] = format_datetime
    env.filters["date"] = format_date
    env.filters["paragraphs"] = _paragraphs
    return env


def render_email(template: str, context: dict[str, Any], brand: Branding | None = None) -> RenderedEmail:
    """Render `template` (one of TEMPLATES) with `context` into subject, text and HTML."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown email template {template!r}; known: {', '.join(TEMPLATES)}")
    context = {**context, "brand": brand or Branding()}
    env = _environment()
    text_module = env.get_template(f"{template}.txt").make_module(context)
    html = env.get_template(f"{template}.html").render(context)
    subject = vars(text_module).get("subject")
    if not subject:
        raise ValueError(f"template {template}.txt must set a non-empty subject")
    subject = " ".join(str(subject).split())  # a header: one line, no stray spaces
    text = re.sub(r"\n{3,}", "\n\n", str(text_module).lstrip("\n"))
    return RenderedEmail(subject=subject, text=text, html=html)
