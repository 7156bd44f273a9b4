"""Connecting to Temporal the same way everywhere: encrypted pydantic payloads, registered search attributes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

from runtime.codec import data_converter
from runtime.settings import CodecSettings, TemporalSettings

_KIND = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.INT: IndexedValueType.INDEXED_VALUE_TYPE_INT,
}


async def connect(settings: TemporalSettings, *, codec: CodecSettings) -> Client:
    """`codec` is required: a client without our keys would write plaintext personal data."""
    return await Client.connect(settings.address, namespace=settings.namespace, data_converter=data_converter(codec))


async def ensure_search_attributes(client: Client, keys: Sequence[SearchAttributeKey[Any]]) -> None:
    """Register `keys` on the server; a no-op for the ones it knows.

    The caller names the keys (`workflows.search_attributes.ALL`) so that `runtime/`
    stays below `workflows/` and imports nothing of the layers above it.
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        k.name: _KIND[k.indexed_value_type]
        for k in keys
        if k.name not in listed.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
