"""`ticketops dev` as a supervisor sees it, on free ports: a crashed worker comes back with a log
line, and SIGTERM to the whole process group, sent twice, stops every child and frees every port."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from devtools.stack import Ports, port_open

pytestmark = pytest.mark.slow


class _Lines:
    """The stack's output, line by line, read by a thread (a pipe's buffer hides lines from select)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        stdout = proc.stdout

        def pump() -> None:
            for raw in stdout:
                self.queue.put(raw.decode().rstrip())
            self.queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def until(self, pattern: str, timeout: float = 240.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(self.seen))


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
    out = _Lines(proc)
    pids: dict[str, int] = {}
    try:
        for name in ("temporal", "stripe", "smtp", "worker", "api"):
            pids[name] = int(out.until(rf"\]\s+{name}\s+up \(pid (\d+)").group(1))
        out.until("ticketops is running")

        os.kill(pids["worker"], signal.SIGKILL)  # the worker crashes
        out.until(r"worker exited with -9; restarting it \(restart 1\)", timeout=30)
        pids["new worker"] = int(out.until(r"\]\s+worker\s+up \(pid (\d+)", timeout=60).group(1))
        assert pids["new worker"] != pids["worker"]

        pgid = os.getpgid(proc.pid)  # a supervisor stops the group; make passes a second SIGTERM on
        os.killpg(pgid, signal.SIGTERM)
        time.sleep(0.2)
        os.killpg(pgid, signal.SIGTERM)
        out.until(r"\] stopped$", timeout=60)
        assert proc.wait(timeout=30) == 0, "\n".join(out.seen)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in pids.values():  # never leave a child of a failed test holding its port
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(_gone(pid) for pid in pids.values()):
        time.sleep(0.2)
    assert [pid for pid in pids.values() if not _gone(pid)] == [], "\n".join(out.seen)
    assert [p for p in (ports.temporal, ports.api, ports.stripe, ports.smtp) if port_open(p)] == []
