"""Finance in the Temporal Web UI, in a real browser: Debian's headless Chromium driven by Playwright.

The test starts its own stack on free ports: a dev server with the Web UI whose
codec endpoint is the API, the API served by uvicorn, in-process workers, the
Stripe stand-in and the SMTP sink. A refund the processor rejects sits in
refund-error; the browser opens the refund-error list and the refund's page.
Staff send their token to the codec (what the UI's "pass access token" does in
production): the input is decoded and no codec banner shows. Without a token
the page shows the banner and ciphertext, and still the summary; with the
development trust of `ticketops dev` it decodes without a token. Screenshots go to var/screenshots/ for review.
Nothing downloads a browser: `make test` installs Debian's chromium when missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, Locator, Page, async_playwright
from playwright.async_api import Error as PlaywrightError
from temporalio.testing import WorkflowEnvironment

from devtools.finance_links import finance_links
from devtools.stripe_server.client import stripe_client
from devtools.stripe_server.config import StripeServerConfig
from devtools.stripe_server.server import StripeServer
from runtime.codec import data_converter
from runtime.settings import RefundConfig
from tests.codec_keys import TEST_CODEC
from tests.conftest import ROOT, temporal_binary
from tests.e2e.refund_support import card_order, request_refund
from tests.harness import Harness, running
from ticketing.roles import Role
from ticketing.store.engine import Store
from workflows import search_attributes

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SHOTS = ROOT / "var" / "screenshots"
REASON = "the show moved to a date the buyer cannot make"  # only in the workflow input: sealed at rest
BANNER = "Codec Server could not connect"
# The list's columns as finance sets them once (README: "Finance in the Web UI"); the UI keeps them in
# localStorage per namespace, so the test sets them the way the column picker would.
FINANCE_COLUMNS = """
localStorage.setItem("namespace-workflow-table-columns", JSON.stringify({"default": [
  {"label": "Status"}, {"label": "Workflow ID"}, {"label": "OrderId"}, {"label": "RefundAmount"},
  {"label": "RefundCurrency"}, {"label": "RefundStatus"}, {"label": "RefundFailure"}, {"label": "Start"}
]}));
"""

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stack:
    app: Harness
    ui: str
    refund: dict[str, str]


@contextlib.asynccontextmanager
async def _serve(app: object, port: int) -> AsyncIterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))  # type: ignore[arg-type]
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no started event
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture
async def stack(store: Store, tmp_path: Path) -> AsyncIterator[Stack]:
    api_port, ui_port = _free_port(), _free_port()
    ui = f"http://127.0.0.1:{ui_port}"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=list(search_attributes.ALL),
        ui=True,
        ui_port=ui_port,
        data_converter=data_converter(TEST_CODEC),
        dev_server_log_level="error",
        dev_server_startup_timeout=timedelta(seconds=60),
        dev_server_extra_args=["--ui-codec-endpoint", f"http://127.0.0.1:{api_port}/codec", "--ui-disable-news-fetch"],
    )
    codec = TEST_CODEC.model_copy(update={"cors_origins": [ui, f"http://localhost:{ui_port}"]})
    try:
        async with (
            StripeServer(StripeServerConfig()) as stripe,
            running(
                env.client, store, tmp_path, f"b{uuid.uuid4().hex[:8]}-", stripe=stripe, webhooks=True,
                settings_overrides={"codec": codec, "refunds": RefundConfig(poll_initial_seconds=0.5)},
            ) as app,
            _serve(app.extra["app"], api_port),
        ):
            yield Stack(app, ui, await _rejected_refund(app, stripe))
    finally:
        await env.shutdown()


async def _rejected_refund(app: Harness, stripe: StripeServer) -> dict[str, str]:
    """A refund the processor refuses (the charge was refunded elsewhere): it waits in refund-error."""
    order = await card_order(app, stripe, card="pm_card_visa", tickets=2)
    elsewhere: dict[str, str] = {"payment_intent": order.payment.reference or ""}
    await stripe_client(stripe.base_url, stripe.config.api_key).v1.refunds.create_async(params=elsewhere)  # type: ignore[arg-type]
    started = await request_refund(app, order.code, {"kind": "full", "reason": REASON})
    for _ in range(200):
        refund = (await app.http.get(started["refund_url"])).json()
        if refund["status"] == "refund-error" and refund["waiting_for"]:
            break
        await asyncio.sleep(0.1)
    assert refund["status"] == "refund-error", refund
    listed = f'RefundStatus="refund-error" AND OrderId="{order.code}"'
    for _ in range(100):  # visibility is eventually consistent
        if [w async for w in app.client.list_workflows(listed)]:
            break
        await asyncio.sleep(0.1)
    return {
        "order": order.code,
        "workflow_id": started["operation_id"],
        "summary": f"Refund EUR 70.00 on order {order.code} (2 tickets, full)",
    }


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: `make test` installs Debian's chromium (make system-deps)"
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


def _banner(page: Page) -> Locator:
    """The red codec error banner, when shown (the page also keeps hidden copies of its text)."""
    return page.locator(f'text="{BANNER}" >> visible=true')


async def _shown(page: Page, text: str, timeout: float = 30.0) -> None:
    """Wait for `text` in the page or one of its frames (the UI renders summaries as markdown in an iframe)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for frame in page.frames:
            with contextlib.suppress(PlaywrightError):
                if text in await frame.inner_text("body", timeout=1_000):
                    return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{text!r} is not shown on {page.url}")
        await asyncio.sleep(0.2)


async def _shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def test_finance_reads_a_refund_error_in_the_web_ui(stack: Stack, browser: Browser) -> None:
    refund = stack.refund
    staff_token = await stack.app.key_for("clara.finance", Role.FINANCE)
    staff = await browser.new_context(
        viewport={"width": 1600, "height": 1000}, extra_http_headers={"Authorization": f"Bearer {staff_token}"}
    )
    await staff.add_init_script(FINANCE_COLUMNS)
    page = await staff.new_page()

    # The refund-error list, as `ticketops dev` links it: the refund is there, named by its summary.
    errors = dict(finance_links(stack.ui))["refund errors"]
    await page.goto(errors)
    await page.get_by_text(refund["workflow_id"]).first.wait_for(timeout=30_000)
    row = page.locator("tr", has_text=refund["workflow_id"])
    for column in (refund["order"], "7000", "EUR", "refund-error", "charge_already_refunded"):
        await row.get_by_text(column, exact=True).first.wait_for(timeout=15_000)
    await _shot(page, "01-refund-error-list")

    # The refund's page: the input decoded through the codec (the reason is only in the input), no banner.
    await page.get_by_text(refund["workflow_id"]).first.click()
    await page.get_by_text(REASON).first.wait_for(timeout=30_000)
    await _shot(page, "02-refund-page-input-decoded-for-staff")
    refund_page = page.url
    assert await _banner(page).count() == 0
    # User Metadata: the summary and what the run waits for (current details), plaintext for everyone.
    await page.get_by_text("User Metadata", exact=True).first.click()
    await _shown(page, refund["summary"])
    await _shown(page, "waiting for finance to retry or mark refunded")
    await _shot(page, "03-refund-page-summary-and-details")
    assert await _banner(page).count() == 0
    await staff.close()

    # Without a staff token the codec answers 401: the banner, ciphertext, and still the summary.
    anonymous = await browser.new_context(viewport={"width": 1600, "height": 1000})
    page = await anonymous.new_page()
    await page.goto(refund_page)
    await _banner(page).first.wait_for(timeout=30_000)
    await _shot(page, "04-refund-page-without-token")
    assert await page.get_by_text(REASON).count() == 0
    await page.get_by_text("User Metadata", exact=True).first.click()
    await _shown(page, refund["summary"])
    await _shot(page, "05-summary-without-token")
    await anonymous.close()

    # `ticketops dev`: the codec trusts the UI on loopback, so the person at the machine reads it all.
    stack.app.settings.codec.trust_local_ui = True
    local = await browser.new_context(viewport={"width": 1600, "height": 1000})
    page = await local.new_page()
    await page.goto(refund_page)
    await page.get_by_text(REASON).first.wait_for(timeout=30_000)
    await _shot(page, "06-dev-ui-decoded-without-token")
    assert await _banner(page).count() == 0
    await local.close()
