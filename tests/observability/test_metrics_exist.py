"""Every metric a dashboard panel or an alert rule reads exists on the endpoints it is scraped from.

A worker built the production way (Temporal runtime with the Prometheus exporter) runs a real
workflow; the API answers a request; then both endpoints are scraped and every metric name in
deploy/observability (alert expressions, dashboard queries) must be among what they expose.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from pathlib import Path

import httpx
import yaml
from temporalio.client import Client

from runtime.telemetry import temporal_runtime
from runtime.temporal import connect
from tests.builders import make_event, make_order
from tests.harness import running, seed
from ticketing.store.engine import Store
from workers.build import build_workers

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"
_NAME = re.compile(r"\b((?:ticketops|temporal)_[a-z0-9_]+)")
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def used_metric_names() -> set[str]:
    """Metric names in alert expressions and dashboard targets (PromQL), suffixes stripped."""
    texts = []
    for group in yaml.safe_load((OBSERVABILITY / "alerts.yaml").read_text())["groups"]:
        texts += [rule["expr"] for rule in group["rules"]]
    dashboard = json.loads((OBSERVABILITY / "dashboards" / "ticketops.json").read_text())
    texts += [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    return {_base(name) for text in texts for name in _NAME.findall(text)}


def _base(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def exposed_names(exposition: str) -> set[str]:
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE ") or line.startswith("# HELP "):
            names.add(_base(line.split()[2]))
        elif line and not line.startswith("#"):
            names.add(_base(re.split(r"[{ ]", line, maxsplit=1)[0]))
    return names


async def test_every_metric_in_alerts_and_dashboards_is_exposed(
    temporal_client: Client, store: Store, tmp_path: Path, queue_prefix: str
) -> None:
    port = free_port()
    runtime = temporal_runtime(port, host="127.0.0.1")
    async with running(temporal_client, store, tmp_path, queue_prefix, with_workers=False) as app:
        client = await connect(app.settings.temporal, codec=app.settings.codec, runtime=runtime)
        workers = build_workers(client, app.deps, prefix=app.prefix)
        for worker in workers:
            await worker.__aenter__()
        try:
            event, types, slots = make_event(event_id=f"evt_{uuid.uuid4().hex[:6]}")
            order = make_order(event, types)
            await seed(store, event, types, slots, [order])
            # The first delivery attempt fails (SMTP down): the failure counters exist once they count.
            await app.sink.stop()
            resp = await app.http.post(f"/orders/{order.code}/resend")
            await asyncio.sleep(1.0)
            await app.sink.start()
            assert (await app.wait_operation(resp.json()["operation_id"], timeout=60))["status"] == "completed"
            # A workflow type no worker knows: its workflow task fails.
            unknown = await client.start_workflow(
                "NoSuchWorkflow", id=f"{app.prefix}unknown", task_queue=f"{app.prefix}orders"
            )
            await asyncio.sleep(1.0)
            await unknown.terminate("test over")
            async with httpx.AsyncClient() as http:
                sdk = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        finally:
            for worker in workers:
                await worker.__aexit__(None, None, None)
        api = await app.http.get("/metrics")
        assert api.status_code == 200

    exposed = exposed_names(sdk) | exposed_names(api.text)
    used = used_metric_names()
    assert {"ticketops_refunds", "temporal_workflow_task_schedule_to_start_latency"} <= used  # parsing works
    assert used - exposed == set(), f"used by alerts or dashboards but never exposed: {sorted(used - exposed)}"
    assert 'route="/orders/{code}/resend"' in api.text  # requests counted by route template, not by path
