"""A server span per API request, continuing the caller's W3C `traceparent` when there is one.

The Temporal client's TracingInterceptor makes the workflow start a child of this span, and the
workers carry it on through the workflow to its activities: one trace from request to side effect.
Without a tracer provider configured (`tracing.enabled`), the spans are no-ops.
"""

from __future__ import annotations

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestTracing:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        method = scope["method"]
        tracer = trace.get_tracer("ticketops.api")
        with tracer.start_as_current_span(
            method, context=propagate.extract(carrier), kind=SpanKind.SERVER, attributes={"http.request.method": method}
        ) as span:

            async def send_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:  # the template, never the path: codes and ids stay out of span names
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
