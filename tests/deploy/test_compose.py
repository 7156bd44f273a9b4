"""The compose stack: valid against the compose schema, one worker per task queue, each scraped and drained."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from workers.build import QUEUES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose"
BIN = Path(sys.executable).parent


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text())["services"]
    return services


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match.group(1))


def test_compose_file_matches_the_compose_spec() -> None:
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE / "compose.yaml")],
        check=False, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_task_queue_has_a_drained_and_scraped_worker() -> None:
    services = _services()
    scrape = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    for queue in QUEUES:
        worker = services[f"worker-{queue}"]
        env = worker["environment"]
        assert json.loads(env["TICKETOPS_WORKER__QUEUES"]) == [queue]
        assert _seconds(worker["stop_grace_period"]) > float(env["TICKETOPS_WORKER__GRACEFUL_SHUTDOWN_SECONDS"])
        assert f"worker-{queue}:{env['TICKETOPS_WORKER__METRICS_PORT']}" in targets
    assert "api:8000" in targets


def test_migration_runs_once_before_the_api_and_workers() -> None:
    services = _services()
    assert services["ticketops-migrate"]["command"] == ["db", "upgrade"]
    for name in ["api", *(f"worker-{q}" for q in QUEUES)]:
        assert services[name]["depends_on"]["ticketops-migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["environment"]["TICKETOPS_WORKER__MIGRATE_ON_START"] == "false"


def test_grafana_is_provisioned_with_the_dashboard_prometheus_alerts_loaded() -> None:
    grafana = _services()["grafana"]["volumes"]
    assert "../observability/dashboards:/var/lib/grafana/dashboards:ro" in grafana
    assert "../observability/alerts.yaml:/etc/prometheus/alerts.yaml:ro" in _services()["prometheus"]["volumes"]
    provider = yaml.safe_load((COMPOSE / "grafana/provisioning/dashboards/ticketops.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
