"""The short fault soak: a stack of its own on free ports, every fault once, the auditor as oracle."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FIGURES = "0 doubled, 0 lost, 0 impossible, 0 duplicate Message-IDs, 0 stuck"


async def test_short_soak_finds_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETOPS_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devtools.soak", "--minutes", "1.5", "--orders", "60", "--var", str(tmp_path / "soak"),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=330)
    text = out.decode()
    lines = text.strip().splitlines()
    assert proc.returncode == 0, text[-5000:]
    figures = next(line for line in lines if line.startswith("traffic "))
    print(figures)  # shown with -s or on failure: the soak's one line
    assert FIGURES in figures, figures
    for fault in ("worker SIGKILL", "Temporal restart", "relay down 30 s", "relay 4xx", "processor before",
                  "processor after", "processor rate_limited", "processor slow", "database locked"):
        assert fault in figures, figures
