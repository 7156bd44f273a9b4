"""The finance links `ticketops dev` prints: the UI's list filtered by URL-encoded visibility queries."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from temporalio.common import SearchAttributeKey

from devtools import finance_links as links
from devtools.stack import _finance_text
from workflows import search_attributes


def test_each_link_filters_the_ui_list_by_refund_status() -> None:
    found = dict(links.finance_links("http://127.0.0.1:8233/"))
    assert set(found) == {"refund errors", "awaiting manual payout", "awaiting approval", "open reconciliation items"}
    assert parse_qs(urlsplit(found["open reconciliation items"]).query)["query"] == ['ReconStatus="open-items"']
    url = urlsplit(found["refund errors"])
    assert (url.netloc, url.path) == ("127.0.0.1:8233", "/namespaces/default/workflows")
    assert " " not in url.query and '"' not in url.query
    assert parse_qs(url.query)["query"] == ['WorkflowType="Refund" AND RefundStatus="refund-error"']
    assert 'RefundStatus="awaiting-approval"' in parse_qs(urlsplit(found["awaiting approval"]).query)["query"][0]
    assert all(url in _finance_text("http://127.0.0.1:8233/") for url in found.values())


def test_the_reconciliation_link_appears_once_its_attribute_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    registered = search_attributes.ALL
    if any(key.name == "ReconStatus" for key in registered):
        registered = tuple(key for key in registered if key.name != "ReconStatus")
    monkeypatch.setattr(search_attributes, "ALL", registered)
    assert "open reconciliation items" not in dict(links.finance_links("http://ui"))
    monkeypatch.setattr(search_attributes, "ALL", (*registered, SearchAttributeKey.for_keyword("ReconStatus")))
    recon = dict(links.finance_links("http://ui"))["open reconciliation items"]
    assert parse_qs(urlsplit(recon).query)["query"] == [f'ReconStatus="{links.RECON_ITEMS_OPEN}"']
