"""`ticketops dev` as a supervisor sees it, on free ports: a crashed worker comes back with a log
line, and SIGTERM to the whole process group, sent twice, stops every child and frees every port."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.stack import Ports, port_open

pytestmark = pytest.mark.slow


def _until(proc: subprocess.Popen[bytes], pattern: str, seen: list[str], timeout: float = 240.0) -> re.Match[str]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        line = proc.stdout.readline().decode()
        if not line:
            break
        seen.append(line.rstrip())
        if found := re.search(pattern, line):
            return found
    raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(seen))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0) until reaped; its state says it is dead.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_dev_restarts_a_dead_worker_and_a_group_sigterm_stops_everything(tmp_path: Path) -> None:
    ports = Ports.free()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETOPS_")}
    ticketops = str(Path(sys.executable).parent / "ticketops")
    proc = subprocess.Popen(
        [ticketops, "dev", "--ports", ",".join(map(str, (ports.temporal, ports.ui, ports.api, ports.stripe,
                                                          ports.smtp))), "--var", str(tmp_path / "var")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    seen: list[str] = []
    try:
        pids = {}
        for name in ("temporal", "stripe", "smtp", "worker", "api"):
            pids[name] = int(_until(proc, rf"^\s+{name}\s+up \(pid (\d+)", seen).group(1))
        _until(proc, "ticketops is running", seen)

        os.kill(pids["worker"], signal.SIGKILL)  # the worker crashes
        _until(proc, r"worker exited with -9; restarting it \(restart 1\)", seen, timeout=30)
        new_worker = int(_until(proc, r"^\s+worker\s+up \(pid (\d+)", seen, timeout=60).group(1))
        assert new_worker != pids["worker"]

        pgid = os.getpgid(proc.pid)  # a supervisor stops the group; make passes a second SIGTERM on
        os.killpg(pgid, signal.SIGTERM)
        time.sleep(0.2)
        os.killpg(pgid, signal.SIGTERM)
        _until(proc, "^stopped$", seen, timeout=60)
        assert proc.wait(timeout=30) == 0, "\n".join(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    children = [*pids.values(), new_worker]
    while time.monotonic() < deadline and not all(_gone(pid) for pid in children):
        time.sleep(0.2)
    assert [pid for pid in children if not _gone(pid)] == [], "\n".join(seen)
    assert [p for p in (ports.temporal, ports.api, ports.stripe, ports.smtp) if port_open(p)] == []
