"""Two blob stores behind one small Protocol; configuration picks one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import boto3
from pydantic import BaseModel, SecretStr


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store `data` under `key`; return a URI that names it."""
        ...

    async def get(self, key: str) -> bytes: ...

    async def find(self, key: str) -> bytes | None:
        """The blob under `key`, or None when there is none (a cache miss, not an error)."""
        ...

    async def find_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """`find` for each key, in order, in as few round trips as the store allows."""
        ...

    async def delete_others(self, prefix: str, keep: str) -> int:
        """Delete every blob under `prefix` except `keep`; how many went."""
        ...


class LocalBlobStore:
    """Files under a folder: the default for development and a single machine."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        """Keys are relative paths without `..`: checked by their parts, which costs no system call."""
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or "\\" in key or "\0" in key or any(p in ("..", ".") for p in parts):
            raise ValueError(f"blob key {key!r} leaves the store")
        return self.root.joinpath(*parts)

    async def put(self, key: str, data: bytes, content_type: str) -> str:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # two writers never share one
            tmp.write_bytes(data)
            tmp.replace(path)  # readers never see half a blob

        await asyncio.to_thread(write)
        return path.as_uri()

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def find(self, key: str) -> bytes | None:
        return (await self.find_many([key]))[0]

    async def find_many(self, keys: Sequence[str]) -> list[bytes | None]:
        paths = [self._path(key) for key in keys]

        def read() -> list[bytes | None]:
            found: list[bytes | None] = []
            for path in paths:
                try:
                    found.append(path.read_bytes())
                except FileNotFoundError:
                    found.append(None)
            return found

        return await asyncio.to_thread(read)

    async def delete_others(self, prefix: str, keep: str) -> int:
        folder, kept = self._path(prefix), self._path(keep)

        def delete() -> int:
            gone = 0
            for path in folder.glob("*") if folder.is_dir() else []:
                if path != kept and path.is_file() and not path.name.startswith("."):
                    path.unlink(missing_ok=True)
                    gone += 1
            return gone

        return await asyncio.to_thread(delete)


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

    async def find(self, key: str) -> bytes | None:
        try:
            return await self.get(key)
        except self.client.exceptions.NoSuchKey:
            return None

    async def find_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return list(await asyncio.gather(*(self.find(key) for key in keys)))

    async def delete_others(self, prefix: str, keep: str) -> int:
        def delete() -> int:
            folder = self._key(prefix.rstrip("/") + "/")
            listed = self.client.list_objects_v2(Bucket=self.settings.bucket, Prefix=folder)
            others = [o["Key"] for o in listed.get("Contents", []) if o["Key"] != self._key(keep)]
            if others:
                objects: list[Any] = [{"Key": key} for key in others]
                self.client.delete_objects(Bucket=self.settings.bucket, Delete={"Objects": objects, "Quiet": True})
            return len(others)

        return await asyncio.to_thread(delete)
