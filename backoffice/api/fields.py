"""Request fields for personal data, checked by the domain's rules (`ticketing.personal_data`).

The API takes phone numbers in international form (with the country code) and
stores them in E.164; emails are checked for syntax only and normalised.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from ticketing.personal_data import clean_email, clean_name, clean_phone, clean_text


def _phone(value: str) -> str:
    try:
        return clean_phone(value)
    except ValueError as err:
        raise ValueError(f"{err}; give it with its country code, e.g. +31 6 1234 5678") from err


PersonName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(clean_name)]
EmailAddress = Annotated[str, Field(min_length=3, max_length=320), AfterValidator(clean_email)]
PhoneNumber = Annotated[str, Field(min_length=3, max_length=40), AfterValidator(_phone)]
FreeText = Annotated[str, AfterValidator(lambda v: clean_text(v, multiline=True))]
