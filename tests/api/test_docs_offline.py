"""`/docs` and `/redoc` work offline: every script, stylesheet and icon they load is served by us."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from backoffice.api.app import create_app

ASSET = re.compile(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.IGNORECASE)
# Swagger UI's own page script names its assets and the OpenAPI document in a JS object, not in tags.
URL_IN_SCRIPT = re.compile(r"""\burl:\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_nothing_from_elsewhere(page: str) -> None:
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as anonymous:
        resp = await anonymous.get(page)
        assert resp.status_code == 200, resp.text
        html = resp.text
        assets = ASSET.findall(html) + URL_IN_SCRIPT.findall(html)
        assert any(a.endswith(".js") for a in assets), html  # the page does load its script
        assert "cdn" not in html.lower() and "fonts.googleapis" not in html
        for asset in assets:
            url = urljoin(f"http://api{page}", asset)
            assert urlsplit(url).netloc == "api", f"{page} loads {asset} from elsewhere"
            if url.endswith("/openapi.json"):
                continue  # served by the app; needs its state, tested in test_openapi
            fetched = await anonymous.get(url)
            assert fetched.status_code == 200 and len(fetched.content) > 100, asset
