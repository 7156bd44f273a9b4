"""Blob stores: a local folder, and S3 through boto3 against moto's real server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from blob_storage.factory import make_blob_store
from blob_storage.stores import LocalBlobStore, S3BlobStore, S3Settings
from runtime.settings import BlobConfig


async def test_local_store_round_trip_and_refuses_escape(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    uri = await store.put("reports/bk_1.csv", b"item,status\n1,sent\n", "text/csv")
    assert uri == (tmp_path / "blobs" / "reports" / "bk_1.csv").as_uri()
    assert await store.get("reports/bk_1.csv") == b"item,status\n1,sent\n"
    assert not list((tmp_path / "blobs" / "reports").glob("*.tmp"))
    for escape in ("../outside.csv", "reports/../../outside.csv", "/etc/passwd", "a\\..\\b", "", "a/\0b"):
        with pytest.raises(ValueError, match="leaves the store"):
            await store.put(escape, b"x", "text/csv")
    assert not (tmp_path / "outside.csv").exists()


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client(
        "s3", endpoint_url=url, region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).create_bucket(Bucket="ticketops-reports", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    yield url
    server.stop()


async def test_s3_store_round_trip(moto_s3: str) -> None:
    config = BlobConfig(
        kind="s3", s3_endpoint_url=moto_s3, s3_access_key_id="testing", s3_secret_access_key="testing"
    )
    store = make_blob_store(config)
    assert isinstance(store, S3BlobStore)
    uri = await store.put("reports/bk_2.csv", b"a,b\n", "text/csv")
    assert uri == "s3://ticketops-reports/reports/bk_2.csv"
    assert await store.get("reports/bk_2.csv") == b"a,b\n"


async def test_s3_missing_bucket_is_an_error(moto_s3: str) -> None:
    store = S3BlobStore(
        S3Settings(bucket="no-such-bucket", endpoint_url=moto_s3, access_key_id="testing", secret_access_key="testing")
    )
    with pytest.raises(Exception, match="NoSuchBucket"):
        await store.put("x.csv", b"x", "text/csv")


async def test_find_tells_a_missing_blob_from_a_present_one(tmp_path: Path, moto_s3: str) -> None:
    local = LocalBlobStore(tmp_path / "blobs")
    s3 = make_blob_store(
        BlobConfig(kind="s3", s3_endpoint_url=moto_s3, s3_access_key_id="testing", s3_secret_access_key="testing")
    )
    for store in (local, s3):
        assert await store.find("ticket-pdfs/tkt_1/abc.pdf") is None
        await store.put("ticket-pdfs/tkt_1/abc.pdf", b"%PDF-1.4", "application/pdf")
        assert await store.find("ticket-pdfs/tkt_1/abc.pdf") == b"%PDF-1.4"
        assert await store.find_many(["ticket-pdfs/tkt_1/abc.pdf", "ticket-pdfs/none.pdf"]) == [b"%PDF-1.4", None]
        await store.put("ticket-pdfs/tkt_1/def.pdf", b"%PDF-1.5", "application/pdf")
        await store.put("ticket-pdfs/tkt_10/abc.pdf", b"%PDF-1.4", "application/pdf")  # another ticket, same stem
        assert await store.delete_others("ticket-pdfs/tkt_1", keep="ticket-pdfs/tkt_1/def.pdf") == 1
        assert await store.find("ticket-pdfs/tkt_1/abc.pdf") is None
        assert await store.find("ticket-pdfs/tkt_1/def.pdf") == b"%PDF-1.5"
        assert await store.find("ticket-pdfs/tkt_10/abc.pdf") == b"%PDF-1.4"
        assert await store.delete_others("ticket-pdfs/none", keep="ticket-pdfs/none/x.pdf") == 0
    with pytest.raises(ValueError, match="leaves the store"):
        await local.find("../outside.pdf")


async def test_concurrent_writers_of_one_key_leave_one_whole_blob(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    blobs = [bytes([i]) * 200_000 for i in range(8)]
    await asyncio.gather(*(store.put("ticket-pdfs/t/k.pdf", b, "application/pdf") for b in blobs))
    assert await store.get("ticket-pdfs/t/k.pdf") in blobs
    assert [p.name for p in (tmp_path / "ticket-pdfs" / "t").iterdir()] == ["k.pdf"]
