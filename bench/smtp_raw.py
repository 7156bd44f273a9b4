"""The baseline for email throughput: prebuilt messages sent with aiosmtplib, nothing else."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib


@dataclass(frozen=True)
class RawMessage:
    sender: str
    recipients: tuple[str, ...]
    data: bytes


async def send_raw(host: str, port: int, messages: Sequence[RawMessage], connections: int) -> float:
    """Send every message over `connections` open connections; return the elapsed seconds.

    Connecting is inside the timing, as the product's pool connects on first use.
    """
    queue: asyncio.Queue[RawMessage] = asyncio.Queue()
    for message in messages:
        queue.put_nowait(message)

    async def connection() -> None:
        client = aiosmtplib.SMTP(hostname=host, port=port, timeout=30)
        await client.connect()
        try:
            while True:
                try:
                    message = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await client.sendmail(message.sender, list(message.recipients), message.data)
        finally:
            await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(max(1, min(connections, len(messages))))))
    return time.perf_counter() - started
