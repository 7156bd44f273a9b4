#!/usr/bin/env bash
# Offline checks of everything under deploy/ (no Docker engine, no cluster needed):
# hadolint, the compose schema, kustomize + kubernetes-validate, promtool check + test.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}

echo "hadolint: deploy/docker/Dockerfile"
"$BIN/hadolint" deploy/docker/Dockerfile

if [ -f deploy/compose/compose.yaml ]; then
  echo "compose schema: deploy/compose/compose.yaml"
  "$BIN/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/compose.yaml
fi

for overlay in deploy/k8s/overlays/*/; do
  [ -f "$overlay/kustomization.yaml" ] || continue
  echo "kustomize + kubernetes-validate: $overlay"
  out=$(mktemp)
  kubectl kustomize "$overlay" > "$out"
  # CRDs (KEDA ScaledObject) have no bundled schema: kubernetes-validate warns, pytest checks them.
  "$BIN/kubernetes-validate" --strict -k 1.32.0 --quiet --no-warn "$out"
  rm -f "$out"
done

if [ -d deploy/observability ]; then
  echo "promtool: deploy/observability"
  promtool check rules deploy/observability/alerts.yaml
  promtool test rules deploy/observability/alerts-test.yaml
fi
echo "deploy checks passed"
