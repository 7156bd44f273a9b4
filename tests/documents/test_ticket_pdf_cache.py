"""The ticket PDF cache: rendered once per content, never stale, never in the way of a delivery."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence
from pathlib import Path

from activities.ticket_pdfs import TicketPdfs, pdf_key
from blob_storage.stores import LocalBlobStore
from tests.documents.conftest import make_ticket
from tests.documents.qr import decode_qr_payloads_from_pdf


class _BrokenStore:
    """A blob store that is down: every call fails."""

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        raise ConnectionError("blob store unreachable")

    async def get(self, key: str) -> bytes:
        raise ConnectionError("blob store unreachable")

    async def find(self, key: str) -> bytes | None:
        raise ConnectionError("blob store unreachable")

    async def find_many(self, keys: Sequence[str]) -> list[bytes | None]:
        raise ConnectionError("blob store unreachable")

    async def delete_others(self, prefix: str, keep: str) -> int:
        raise ConnectionError("blob store unreachable")


async def test_rendered_once_then_read_back(tmp_path: Path) -> None:
    pdfs = TicketPdfs(LocalBlobStore(tmp_path))
    doc = make_ticket()
    first = await pdfs.get([doc])
    again = await TicketPdfs(LocalBlobStore(tmp_path)).get([doc])  # another worker process, same store
    assert pdfs.rendered == 1 and again == first
    assert (tmp_path / pdf_key(doc)).read_bytes() == first[0]


async def test_any_change_to_the_ticket_is_a_new_document(tmp_path: Path) -> None:
    pdfs = TicketPdfs(LocalBlobStore(tmp_path))
    doc = make_ticket()
    reissued = make_ticket(barcode="TKO-00000001-NEWCODE1")
    renamed = make_ticket(holder_name="Grace Hopper")
    assert len({pdf_key(doc), pdf_key(reissued), pdf_key(renamed)}) == 3
    [old] = await pdfs.get([doc])
    [new] = await pdfs.get([reissued])
    assert decode_qr_payloads_from_pdf(new) == ["TKO-00000001-NEWCODE1"] != decode_qr_payloads_from_pdf(old)
    # only the current PDF of a ticket is kept: the old barcode and name do not linger
    assert [p.name for p in (tmp_path / pdf_key(doc)).parent.iterdir()] == [Path(pdf_key(reissued)).name]
    await pdfs.get([renamed])
    assert [p.name for p in (tmp_path / pdf_key(doc)).parent.iterdir()] == [Path(pdf_key(renamed)).name]


async def test_a_corrupt_blob_is_rendered_again(tmp_path: Path) -> None:
    pdfs = TicketPdfs(LocalBlobStore(tmp_path))
    doc = make_ticket()
    (tmp_path / pdf_key(doc)).parent.mkdir(parents=True)
    (tmp_path / pdf_key(doc)).write_bytes(b"<html>not a pdf</html>")
    [pdf] = await pdfs.get([doc])
    assert pdf.startswith(b"%PDF-") and pdfs.rendered == 1
    assert (tmp_path / pdf_key(doc)).read_bytes() == pdf


async def test_a_broken_blob_store_still_gives_every_pdf() -> None:
    pdfs = TicketPdfs(_BrokenStore())
    docs = [make_ticket(ticket_id=f"T-{i}", barcode=f"TKO-0000000{i}-Q7ZP4K2M") for i in range(3)]
    found = await pdfs.get(docs)
    assert [decode_qr_payloads_from_pdf(p) for p in found] == [[d.barcode] for d in docs]
    assert pdfs.rendered == 3


async def test_rendering_processes_give_each_ticket_its_own_pdf(tmp_path: Path) -> None:
    pdfs = TicketPdfs(LocalBlobStore(tmp_path), processes=2)
    docs = [make_ticket(ticket_id=f"T-{i}", barcode=f"TKO-0000000{i}-Q7ZP4K2M") for i in range(5)]
    try:
        found = await pdfs.get(docs)
    finally:
        pdfs.close()
    assert [decode_qr_payloads_from_pdf(p) for p in found] == [[d.barcode] for d in docs]
    assert pdfs.rendered == 5
    assert [(tmp_path / pdf_key(d)).read_bytes() for d in docs] == found


async def test_a_dead_rendering_process_does_not_stop_delivery(tmp_path: Path) -> None:
    pdfs = TicketPdfs(LocalBlobStore(tmp_path), processes=2)
    docs = [make_ticket(ticket_id=f"T-{i}", barcode=f"TKO-0000000{i}-Q7ZP4K2M") for i in range(6)]
    try:
        await pdfs.get(docs[:2])
        pool = pdfs._pool
        assert pool is not None
        for pid in list(pool._processes):  # the OOM killer takes the rendering processes
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.5)
        found = await pdfs.get(docs[2:])
    finally:
        pdfs.close()
    assert [decode_qr_payloads_from_pdf(p) for p in found] == [[d.barcode] for d in docs[2:]]
    assert pdfs._pool is None  # a fresh pool next time
