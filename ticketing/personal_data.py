"""What a name, an email address, a phone number or any text we store may hold.

Buyers' data reaches us from agents, import files and the buyer's own links,
and it ends up in emails, PDFs, CSV reports and PostgreSQL (which refuses NUL
in text). So text never holds control characters, surrogates or unassigned
code points; names are one line; emails are checked for syntax only (no DNS:
the machines that run this may have no resolver, and a lookup leaks data);
phone numbers are stored in E.164.
"""

from __future__ import annotations

import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

# Line breaks and tabs are fine in free text (comments, reasons); nowhere else.
_FREE_TEXT_CONTROLS = frozenset("\t\n\r")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Cn"})


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why `value` cannot be stored, or None. Checks every code point once."""
    for index, char in enumerate(value):
        if multiline and char in _FREE_TEXT_CONTROLS:
            continue
        category = unicodedata.category(char)
        if category in _REFUSED_CATEGORIES:
            what = {"Cc": "a control character", "Cs": "a surrogate", "Cn": "an unassigned code point"}[category]
            return f"holds {what} (U+{ord(char):04X}) at position {index}"
    return None


def clean_text(value: str, *, multiline: bool = False) -> str:
    """The text, trimmed; ValueError when it holds what no text may."""
    if problem := text_problem(value, multiline=multiline):
        raise ValueError(f"the text {problem}")
    return value.strip()


def clean_name(value: str) -> str:
    """A person's name: one line of printable text, inner whitespace folded."""
    if problem := text_problem(value):
        raise ValueError(f"the name {problem}")
    folded = " ".join(value.split())
    if not folded:
        raise ValueError("the name is empty")
    if any(unicodedata.category(c).startswith("Z") and c != " " for c in folded):
        raise ValueError("the name holds an unusual space character")
    return folded


def clean_email(value: str) -> str:
    """A syntactically valid address, normalised (domain lower-cased and IDNA-checked); no network lookups."""
    if problem := text_problem(value):
        raise ValueError(f"the email address {problem}")
    try:
        checked = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as err:
        raise ValueError(f"not a valid email address: {err}") from err
    return str(checked.normalized)


def clean_phone(value: str, *, default_region: str | None = None) -> str:
    """A possible phone number in E.164 (`+31612345678`); a number without `+` needs `default_region`."""
    if problem := text_problem(value):
        raise ValueError(f"the phone number {problem}")
    try:
        number = phonenumbers.parse(value.strip(), default_region)
    except phonenumbers.NumberParseException as err:
        raise ValueError(f"not a phone number: {err}") from err
    if not phonenumbers.is_possible_number(number):
        raise ValueError("not a possible phone number (check the country code and the digits)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
