"""Kubernetes manifests (kustomize): valid for 1.32, and the invariants a schema cannot see.

Every task queue the workers serve has a Deployment and a KEDA ScaledObject on its backlog; every
worker's grace period outlives its graceful shutdown; secrets are only ever references.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.build import QUEUES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
BIN = Path(sys.executable).parent
_SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "DATABASE_URL", "USERNAME")


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_overlays_exist() -> None:
    assert {"self-hosted", "cloud", "cloud-mtls"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_validate_strictly_for_kubernetes_1_32(overlay: str, tmp_path: Path) -> None:
    rendered = tmp_path / "all.yaml"
    rendered.write_text(yaml.safe_dump_all(render(overlay)))
    done = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "-k", "1.32.0", "--quiet", str(rendered)],
        check=False, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_queue_has_a_drained_scraped_and_scaled_worker(overlay: str) -> None:
    docs = render(overlay)
    deployments = by_kind(docs, "Deployment")
    scalers = by_kind(docs, "ScaledObject")
    config = by_kind(docs, "ConfigMap")["ticketops-config"]["data"]
    served = {}
    for name, dep in deployments.items():
        container = dep["spec"]["template"]["spec"]["containers"][0]
        if container["args"][0] == "worker":
            served[json.loads(env_of(container)["TICKETOPS_WORKER__QUEUES"])[0]] = (name, dep, container)
    assert set(served) == set(QUEUES)
    for queue, (name, dep, container) in served.items():
        env = env_of(container)
        grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > float(env["TICKETOPS_WORKER__GRACEFUL_SHUTDOWN_SECONDS"]), name
        assert {"name": "metrics", "containerPort": int(env["TICKETOPS_WORKER__METRICS_PORT"])} in container["ports"]
        scaler = [s for s in scalers.values() if s["spec"]["scaleTargetRef"]["name"] == name]
        assert len(scaler) == 1, f"{name} needs exactly one ScaledObject"
        trigger = scaler[0]["spec"]["triggers"][0]
        assert trigger["type"] == "temporal"
        meta = trigger["metadata"]
        assert meta["taskQueue"] == queue
        assert meta["namespace"] == config["TEMPORAL_NAMESPACE"] and meta["endpoint"] == config["TEMPORAL_ADDRESS"]
        assert set(meta["queueTypes"].split(",")) <= {"workflow", "activity"}
        assert int(meta["targetQueueSize"]) > 0
        assert scaler[0]["spec"]["minReplicaCount"] >= 1  # a queue always has a poller


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_probes_service_autoscaling_and_disruption_budget(overlay: str) -> None:
    docs = render(overlay)
    api = by_kind(docs, "Deployment")["ticketops-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    selector = api["spec"]["selector"]["matchLabels"]
    assert by_kind(docs, "Service")["ticketops-api"]["spec"]["selector"] == selector
    hpa = by_kind(docs, "HorizontalPodAutoscaler")["ticketops-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "ticketops-api"
    assert by_kind(docs, "PodDisruptionBudget")["ticketops-api"]["spec"]["selector"]["matchLabels"] == selector


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migration_and_schedules_jobs(overlay: str) -> None:
    found = by_kind(render(overlay), "Job").values()
    jobs = {tuple(job["spec"]["template"]["spec"]["containers"][0]["args"]) for job in found}
    assert jobs == {("db", "upgrade"), ("schedules", "apply")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_references_and_containers_run_unprivileged(overlay: str) -> None:
    for doc in render(overlay):
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        spec = doc["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            for name, value in env_of(container).items():
                if any(word in name for word in _SECRET_WORDS) and "PATH" not in name:
                    assert isinstance(value, dict) and "secretKeyRef" in value, f"{doc['metadata']['name']}: {name}"


@pytest.mark.parametrize("overlay", ["cloud", "cloud-mtls"])
def test_cloud_overlays_authenticate_every_process_and_scaler(overlay: str) -> None:
    docs = render(overlay)
    config = by_kind(docs, "ConfigMap")["ticketops-config"]["data"]
    assert config["TICKETOPS_TEMPORAL__REGISTER_SEARCH_ATTRIBUTES"] == "false"
    mtls = {"TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH"}
    wanted = {"TEMPORAL_API_KEY"} if overlay == "cloud" else mtls
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            assert wanted <= set(env_of(doc["spec"]["template"]["spec"]["containers"][0])), doc["metadata"]["name"]
    auths = by_kind(docs, "TriggerAuthentication")
    for scaler in by_kind(docs, "ScaledObject").values():
        assert scaler["spec"]["triggers"][0]["authenticationRef"]["name"] in auths


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_runs_as_production_so_the_dev_codec_trust_is_refused(overlay: str) -> None:
    """`TICKETOPS_ENVIRONMENT=production` makes the settings refuse the development-only codec trust."""
    [config] = by_kind(render(overlay), "ConfigMap").values()
    assert config["data"]["TICKETOPS_ENVIRONMENT"] == "production"
    assert "TICKETOPS_CODEC__TRUST_LOCAL_UI" not in config["data"]
