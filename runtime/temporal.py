"""Connecting to Temporal the same way everywhere: encrypted pydantic payloads, registered search attributes.

The address, namespace and credentials come from Temporal's environment configuration
(`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS_CLIENT_CERT_PATH`,
`TEMPORAL_TLS_CLIENT_KEY_PATH`, `TEMPORAL_CONFIG_FILE`/`TEMPORAL_PROFILE`), the same names the
`temporal` CLI reads; `TemporalSettings` supplies the development defaults under them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, Interceptor
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.envconfig import ClientConfig, ClientConnectConfig
from temporalio.runtime import Runtime

from runtime.codec import data_converter
from runtime.settings import CodecSettings, TemporalSettings

# Each kind of search attribute: the server's enum (registration) and tcld's word (Temporal Cloud).
_KINDS: dict[SearchAttributeIndexedValueType, tuple[IndexedValueType.ValueType, str]] = {
    SearchAttributeIndexedValueType.KEYWORD: (IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD, "Keyword"),
    SearchAttributeIndexedValueType.INT: (IndexedValueType.INDEXED_VALUE_TYPE_INT, "Int"),
    SearchAttributeIndexedValueType.DOUBLE: (IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE, "Double"),
    SearchAttributeIndexedValueType.DATETIME: (IndexedValueType.INDEXED_VALUE_TYPE_DATETIME, "Datetime"),
    SearchAttributeIndexedValueType.BOOL: (IndexedValueType.INDEXED_VALUE_TYPE_BOOL, "Bool"),
    SearchAttributeIndexedValueType.TEXT: (IndexedValueType.INDEXED_VALUE_TYPE_TEXT, "Text"),
    SearchAttributeIndexedValueType.KEYWORD_LIST: (IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST, "KeywordList"),
}


def connect_config(settings: TemporalSettings, env: Mapping[str, str] | None = None) -> ClientConnectConfig:
    """Our defaults, overridden by whatever Temporal's environment configuration sets (`env`: for tests)."""
    config: ClientConnectConfig = {"target_host": settings.address, "namespace": settings.namespace}
    if settings.use_env_config:
        config.update(ClientConfig.load_client_connect_config(override_env_vars=env))
    return config


async def connect(
    settings: TemporalSettings,
    *,
    codec: CodecSettings,
    runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """`codec` is required: a client without our keys would write plaintext personal data.

    `runtime` carries the process's telemetry (the workers' Prometheus exporter); `interceptors`
    that are also worker interceptors (tracing) apply to every worker built on this client.
    """
    return await Client.connect(
        **connect_config(settings),
        data_converter=data_converter(codec),
        runtime=runtime,
        interceptors=interceptors,
    )


async def ensure_search_attributes(client: Client, keys: Sequence[SearchAttributeKey[Any]]) -> None:
    """Register `keys` on the server; a no-op for the ones it knows.

    The caller names the keys (`workflows.search_attributes.ALL`) so that `runtime/`
    stays below `workflows/` and imports nothing of the layers above it. This goes
    through the OperatorService, which Temporal Cloud does not offer to workers: there
    `temporal.register_search_attributes` is False and the attributes are created once
    per namespace (`search_attribute_commands` prints the tcld commands).
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        k.name: _KINDS[k.indexed_value_type][0]
        for k in keys
        if k.name not in listed.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )


def search_attribute_commands(namespace: str, keys: Sequence[SearchAttributeKey[Any]]) -> list[str]:
    """The `tcld` commands that create `keys` (`workflows.search_attributes.ALL`) on a Temporal Cloud namespace."""
    return [
        f"tcld namespace search-attributes add --namespace {namespace} "
        f"--search-attribute '{k.name}={_KINDS[k.indexed_value_type][1]}'"
        for k in keys
    ]
