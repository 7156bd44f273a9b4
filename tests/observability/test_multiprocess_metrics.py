"""Several API processes (uvicorn --workers) answer /metrics with the sum of their request counts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COUNT = "from backoffice.api.metrics import REQUESTS; REQUESTS.labels('GET', '/orders/{code}', '200').inc(%d)"
SCRAPE = (
    "from prometheus_client import generate_latest; from backoffice.api.metrics import _request_registry; "
    "print(generate_latest(_request_registry()).decode())"
)


def test_request_counts_of_several_processes_are_summed(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n in (2, 3):  # two API processes that answered 2 and 3 requests, then exited
        subprocess.run([sys.executable, "-c", COUNT % n], env=env, check=True)
    out = subprocess.run([sys.executable, "-c", SCRAPE], env=env, check=True, capture_output=True, text=True).stdout
    assert 'ticketops_http_requests_total{method="GET",route="/orders/{code}",status="200"} 5.0' in out


def test_without_the_directory_a_process_counts_only_its_own(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    subprocess.run([sys.executable, "-c", COUNT % 2], env=env, check=True)
    out = subprocess.run([sys.executable, "-c", SCRAPE], env=env, check=True, capture_output=True, text=True).stdout
    assert 'route="/orders/{code}"' not in out
