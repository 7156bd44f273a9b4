"""Two blob stores behind one small Protocol; configuration picks one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Protocol

import boto3
from pydantic import BaseModel, SecretStr


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store `data` under `key`; return a URI that names it."""
        ...

    async def get(self, key: str) -> bytes: ...


class LocalBlobStore:
    """Files under a folder: the default for development and a single machine."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"blob key {key!r} leaves the store")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        await asyncio.to_thread(tmp.write_bytes, data)
        tmp.replace(path)  # readers never see half a report
        return path.as_uri()

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)


class S3Settings(BaseModel):
    bucket: str
    region: str = "eu-west-1"
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    prefix: str = ""


class S3BlobStore:
    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        kwargs: dict[str, Any] = {"region_name": settings.region}
        if settings.endpoint_url:
            kwargs["endpoint_url"] = settings.endpoint_url
        if settings.access_key_id and settings.secret_access_key:
            kwargs["aws_access_key_id"] = settings.access_key_id
            kwargs["aws_secret_access_key"] = settings.secret_access_key.get_secret_value()
        self.client = boto3.client("s3", **kwargs)

    def _key(self, key: str) -> str:
        return f"{self.settings.prefix}{key}"

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.settings.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
        )
        return f"s3://{self.settings.bucket}/{self._key(key)}"

    async def get(self, key: str) -> bytes:
        response = await asyncio.to_thread(self.client.get_object, Bucket=self.settings.bucket, Key=self._key(key))
        body: bytes = await asyncio.to_thread(response["Body"].read)
        return body
