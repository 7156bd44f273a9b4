"""`/metrics`: the API's requests (by route template, status, latency) and the ledger's business figures.

Several API processes (uvicorn `--workers`, gunicorn) each count their own requests; with
`PROMETHEUS_MULTIPROC_DIR` set, prometheus-client keeps the counts in files there and every
process's `/metrics` answers the sum (the directory must be emptied when the API starts). The
business figures are read from the store at scrape time, so any process gives the same answer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.settings import Settings
from ticketing.states import RefundStatus
from ticketing.store.business_metrics import BusinessFigures, read_business_figures

REQUESTS = Counter(
    "ticketops_http_requests", "API requests answered, by route template and status.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "ticketops_http_request_duration_seconds",
    "Time to answer an API request, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
_UNMATCHED = "<unmatched>"  # any path no route knows: one label value, not one per probe


class RequestMetrics:
    """ASGI middleware: counts every HTTP request under its route template (`/orders/{code}`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", _UNMATCHED)
            if route != "/metrics":
                method = scope["method"]
                REQUESTS.labels(method, route, str(status)).inc()
                LATENCY.labels(method, route).observe(time.perf_counter() - started)


class BusinessCollector(Collector):
    """The figures read for this scrape, as metric families (read first: collectors are synchronous)."""

    def __init__(self, figures: BusinessFigures, settings: Settings, now: datetime) -> None:
        self.figures = figures
        self.settings = settings
        self.now = now

    def collect(self) -> Iterable[Metric]:
        yield from self._refunds()
        yield from self._bulk()
        yield from self._reconciliation()

    def _refunds(self) -> Iterator[Metric]:
        by_status = GaugeMetricFamily("ticketops_refunds", "Refunds in the ledger, by status.", labels=["status"])
        oldest = GaugeMetricFamily(
            "ticketops_refund_oldest_age_seconds",
            "Age since the last change of the oldest refund in each open status (awaiting-manual, confirming...).",
            labels=["status"],
        )
        open_statuses = {RefundStatus.AWAITING_APPROVAL, RefundStatus.AWAITING_MANUAL, RefundStatus.REFUNDING,
                         RefundStatus.CONFIRMING, RefundStatus.REQUESTED}
        for status in RefundStatus:
            found = self.figures.refunds.get(status.value)
            by_status.add_metric([status.value], found.count if found else 0)
            if status in open_statuses:
                age = (self.now - found.oldest_updated_at).total_seconds() if found and found.oldest_updated_at else 0
                oldest.add_metric([status.value], max(age, 0.0))
        yield by_status
        yield oldest
        submitted = CounterMetricFamily(
            "ticketops_refunds_submitted", "Refunds the processor accepted (have a processor refund id).",
            labels=["processor"],
        )
        for processor, count in sorted(self.figures.submitted_by_processor.items()):
            submitted.add_metric([processor], count)
        yield submitted
        yield GaugeMetricFamily(
            "ticketops_processor_refund_limit_per_second",
            "The processor's refund rate limit ticketops paces bulk refunds to.",
            value=self.settings.bulk.refunds_per_second,
        )

    def _bulk(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "ticketops_bulk_emails_sent", "Bulk delivery emails the SMTP or SES provider accepted.",
            value=self.figures.bulk_emails_sent,
        )

    def _reconciliation(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "ticketops_reconciliation_available", "1 once the reconciliation tables exist in the database.",
            value=1 if self.figures.recon_available else 0,
        )
        items = GaugeMetricFamily(
            "ticketops_reconciliation_items_open", "Open reconciliation discrepancies, by class.", labels=["class"]
        )
        for cls, count in sorted(self.figures.recon_open_by_class.items()):
            items.add_metric([cls], count)
        yield items
        last = GaugeMetricFamily(
            "ticketops_reconciliation_last_run_timestamp_seconds",
            "When the latest reconciliation run of a processor ended, by its outcome (completed, failed).",
            labels=["processor", "status"],
        )
        for (processor, status), at in sorted(self.figures.recon_last_run.items()):
            last.add_metric([processor, status], at.timestamp())
        yield last


def _request_registry() -> CollectorRegistry:
    """The request metrics: this process's, or every process's when running multi-process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


def install(app: FastAPI) -> None:
    app.add_middleware(RequestMetrics)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        state = request.app.state.ticketops
        async with state.store.transaction() as conn:
            figures = await read_business_figures(conn)
        business = CollectorRegistry()
        business.register(BusinessCollector(figures, state.settings, datetime.now(UTC)))
        body = generate_latest(_request_registry()) + generate_latest(business)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
