"""Pick the blob store from settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from blob_storage.stores import BlobStore, LocalBlobStore, S3BlobStore, S3Settings

if TYPE_CHECKING:
    from runtime.settings import BlobConfig


def make_blob_store(config: BlobConfig) -> BlobStore:
    if config.kind == "s3":
        return S3BlobStore(
            S3Settings(
                bucket=config.s3_bucket,
                region=config.s3_region,
                endpoint_url=config.s3_endpoint_url,
                access_key_id=config.s3_access_key_id,
                secret_access_key=config.s3_secret_access_key,
            )
        )
    return LocalBlobStore(Path(config.root))
