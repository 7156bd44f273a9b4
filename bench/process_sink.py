"""The SMTP sink in its own process, read back through its folder.

In a deployment the SMTP relay is another machine; run in the benchmark's process (a
thread), the sink takes the interpreter lock from whatever sends to it, the product or
the raw baseline, and each side's rate then includes the sink's own Python. Here it is
`python -m devtools.smtp_sink` (the same server `ticketops dev` runs), and the few things
the benchmarks ask of a sink (`port`, `deliveries`, `clear`, `wait_for_messages`) are
answered from the .eml files it writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr
from pathlib import Path

from devtools.smtp_sink import Delivery

_LISTENING = re.compile(rb"SMTP sink on [^:]+:(\d+)")


class ProcessSink:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devtools.smtp_sink", "--dir", str(self.directory), "--port", "0",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), timeout=60)
        found = _LISTENING.search(line)
        if found is None:
            raise RuntimeError(f"the SMTP sink did not start: {line!r}")
        self.port = int(found.group(1))

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), timeout=10)
            if self._process.returncode is None:
                self._process.kill()

    def _files(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*.eml") if not p.name.startswith("."))

    @property
    def deliveries(self) -> list[Delivery]:
        """Every message in the folder, the envelope read back from its From and To headers."""
        parser = BytesHeaderParser()
        found = []
        for path in self._files():
            headers = parser.parsebytes(path.read_bytes())
            recipients = tuple(addr for _, addr in getaddresses([headers.get("To", "")]) if addr)
            found.append(Delivery(parseaddr(headers.get("From", ""))[1], recipients, path))
        return found

    async def wait_for_messages(self, count: int, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self._files()) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{len(self._files())} of {count} messages arrived")
            await asyncio.sleep(0.05)

    def clear(self) -> None:
        """Remove the messages read so far (the benchmark's folder only)."""
        for path in self._files():
            path.unlink()
