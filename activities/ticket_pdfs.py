"""Ticket PDFs rendered once per content and kept in blob storage.

Rendering a ticket (fpdf2, a QR code) costs 7 to 15 ms of CPU, several times what it
costs to send the email that carries it; a bulk send to 50,000 buyers, a reminder a
week later and every resend would pay it again for the same bytes. A ticket's PDF is a
pure function of its `TicketDocument` and of the renderer, so the blob key is a digest
of both: a reissued barcode, a new holder name or a moved time slot is a new key, and a
change to the renderer's code or fonts retires every cached PDF at once. Nothing can be
served stale, so nothing has to be invalidated.

The PDFs carry the holder's name, like the CSV reports beside them: the blob store's
retention and access rules apply to both.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import cache
from pathlib import Path

import fpdf
import structlog

import documents.pdf_fonts
import documents.ticket_pdf
from blob_storage.stores import BlobStore
from documents.models import TicketDocument
from documents.ticket_pdf import render_ticket_pdfs

log = structlog.get_logger(__name__)

_PREFIX = "ticket-pdfs"


@cache
def renderer_version() -> str:
    """Digest of the renderer's own code, its fonts module and fpdf2's version."""
    digest = hashlib.sha256(fpdf.__version__.encode())
    for module in (documents.ticket_pdf, documents.pdf_fonts):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:12]


def pdf_key(doc: TicketDocument) -> str:
    content = hashlib.sha256(f"{renderer_version()}|{doc.model_dump_json()}".encode()).hexdigest()[:32]
    return f"{_PREFIX}/{doc.ticket_id}/{content}.pdf"


class TicketPdfs:
    """Cached ticket PDFs: found in blob storage, or rendered (off the event loop) and stored.

    The cache never decides whether a ticket goes out: when blob storage fails, the PDF
    is rendered as if it had never been stored, and a failed store is only logged.
    """

    def __init__(self, blobs: BlobStore, *, processes: int = 0) -> None:
        self.blobs = blobs
        self.processes = processes
        self.rendered = 0  # for tests and benchmarks: how many the cache could not supply
        self._pool: ProcessPoolExecutor | None = None

    async def _render(self, docs: list[TicketDocument]) -> list[bytes]:
        """In a thread, or spread over the rendering processes (fpdf2 holds the GIL throughout)."""
        if self.processes < 1 or len(docs) < 2:
            return await asyncio.to_thread(render_ticket_pdfs, docs)
        if self._pool is None:  # spawned, not forked: the worker has threads (Temporal's core, the store's)
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"))
        loop = asyncio.get_running_loop()
        size = -(-len(docs) // self.processes)
        chunks = [docs[i : i + size] for i in range(0, len(docs), size)]
        try:
            render = documents.ticket_pdf.render_ticket_pdfs  # by its module, so what crosses is its import path
            parts = await asyncio.gather(*(loop.run_in_executor(self._pool, render, c) for c in chunks))
        except Exception as exc:  # the pool must never be why a ticket is not delivered: render here instead
            log.warning("ticket_pdfs.pool_failed", error=type(exc).__name__)
            if isinstance(exc, BrokenProcessPool):  # a process died (out of memory, killed): a new pool next time
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            return await asyncio.to_thread(render_ticket_pdfs, docs)
        return [pdf for part in parts for pdf in part]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def _find(self, keys: list[str]) -> list[bytes | None]:
        try:
            found = await self.blobs.find_many(keys)
        except Exception as exc:  # a cache read that fails is a miss, whatever the store said
            log.warning("ticket_pdfs.read_failed", keys=len(keys), error=type(exc).__name__)
            return [None] * len(keys)
        return [data if data is not None and data.startswith(b"%PDF-") else None for data in found]

    async def _store(self, key: str, data: bytes) -> None:
        """Keep this PDF, and only this one, for its ticket: an older one holds an old barcode or name."""
        try:
            await self.blobs.put(key, data, "application/pdf")
            await self.blobs.delete_others(key.rsplit("/", 1)[0], keep=key)
        except Exception as exc:
            log.warning("ticket_pdfs.write_failed", key=key, error=type(exc).__name__)

    async def get(self, docs: Sequence[TicketDocument]) -> list[bytes]:
        """The PDF of each document, in order."""
        found, _ = await self._fill(docs)
        return found

    async def ensure(self, docs: Sequence[TicketDocument]) -> int:
        """Render and store the PDFs the cache does not have yet (tickets just issued); how many."""
        _, rendered = await self._fill(docs)
        return rendered

    async def _fill(self, docs: Sequence[TicketDocument]) -> tuple[list[bytes], int]:
        keys = [pdf_key(doc) for doc in docs]
        found = await self._find(keys)
        missing = [i for i, data in enumerate(found) if data is None]
        if missing:
            rendered = await self._render([docs[i] for i in missing])
            self.rendered += len(missing)
            for i, pdf in zip(missing, rendered, strict=True):
                found[i] = pdf
            await asyncio.gather(*(self._store(keys[i], pdf) for i, pdf in zip(missing, rendered, strict=True)))
        return [data for data in found if data is not None], len(missing)
