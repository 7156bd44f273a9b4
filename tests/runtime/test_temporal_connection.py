"""How processes reach Temporal and how workers drain and version: settings to SDK options."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.common import VersioningBehavior

from runtime.settings import Settings, TemporalSettings, WorkerSettings
from runtime.temporal import connect_config, search_attribute_commands
from workers.build import BUILD_ID, VERSIONING, WORKFLOWS, worker_options
from workflows import search_attributes


def test_without_temporal_environment_our_settings_are_the_defaults() -> None:
    config = connect_config(TemporalSettings(address="temporal:7233", namespace="ticketops"), env={})
    assert config == {"target_host": "temporal:7233", "namespace": "ticketops"}


def test_cloud_api_key_from_temporal_environment_turns_tls_on() -> None:
    env = {"TEMPORAL_ADDRESS": "eu-west-1.aws.api.temporal.io:7233", "TEMPORAL_NAMESPACE": "ticketops.a1b2c",
           "TEMPORAL_API_KEY": "key-123"}
    config = connect_config(TemporalSettings(), env=env)
    assert config["target_host"] == "eu-west-1.aws.api.temporal.io:7233"
    assert config["namespace"] == "ticketops.a1b2c"
    assert config["api_key"] == "key-123"
    assert config["tls"] is True


def test_mtls_client_certificate_from_temporal_environment() -> None:
    env = {"TEMPORAL_ADDRESS": "ticketops.a1b2c.tmprl.cloud:7233", "TEMPORAL_TLS_CLIENT_CERT_DATA": "CERT",
           "TEMPORAL_TLS_CLIENT_KEY_DATA": "KEY"}
    tls = connect_config(TemporalSettings(), env=env)["tls"]
    assert not isinstance(tls, bool)
    assert tls.client_cert == b"CERT" and tls.client_private_key == b"KEY"


def test_environment_configuration_can_be_switched_off() -> None:
    config = connect_config(TemporalSettings(use_env_config=False), env={"TEMPORAL_ADDRESS": "elsewhere:7233"})
    assert config["target_host"] == "127.0.0.1:7233"


def test_an_unknown_profile_is_an_error_not_a_silent_default() -> None:
    with pytest.raises(Exception, match="prod"):
        connect_config(TemporalSettings(), env={"TEMPORAL_PROFILE": "prod"})


def test_cloud_search_attribute_commands_cover_every_attribute() -> None:
    commands = search_attribute_commands("ticketops.a1b2c", search_attributes.ALL)
    assert len(commands) == len(search_attributes.ALL)
    assert "tcld namespace search-attributes add --namespace ticketops.a1b2c --search-attribute 'RefundAmount=Int'" \
        in commands
    assert any("'RefundStatus=Keyword'" in c for c in commands)
    assert any("'ReconOpenItems=Double'" in c for c in commands)
    assert any("'PaymentDeadline=Datetime'" in c for c in commands)


def test_every_worker_drains_for_the_configured_time_and_is_unversioned_by_default() -> None:
    options = worker_options(Settings(worker=WorkerSettings(graceful_shutdown_seconds=45)))
    assert options["graceful_shutdown_timeout"] == timedelta(seconds=45)
    assert options["build_id"] == BUILD_ID and "deployment_config" not in options


def test_versioned_workers_poll_as_a_deployment_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workers.build.declare_versioning_behaviours", lambda: None)  # process-wide; see e2e
    options = worker_options(Settings(worker=WorkerSettings(versioning=True, deployment_name="ticketops",
                                                            build_id="3f2a9c1")))
    config = options["deployment_config"]
    assert "build_id" not in options
    assert config.use_worker_versioning
    assert (config.version.deployment_name, config.version.build_id) == ("ticketops", "3f2a9c1")


# The choice per workflow, documented in workers/build.py: long waits upgrade (with patching), short ones pin.
EXPECTED = {
    "Refund": VersioningBehavior.AUTO_UPGRADE,
    "BulkDelivery": VersioningBehavior.AUTO_UPGRADE,
    "EventCancellation": VersioningBehavior.AUTO_UPGRADE,
    "ImportOrders": VersioningBehavior.AUTO_UPGRADE,
    "TransferTicket": VersioningBehavior.AUTO_UPGRADE,
    "Reservation": VersioningBehavior.AUTO_UPGRADE,
    "ReturnRequest": VersioningBehavior.AUTO_UPGRADE,
    "Reconcile": VersioningBehavior.AUTO_UPGRADE,
}


@pytest.mark.parametrize("cls", WORKFLOWS, ids=lambda c: c.__name__)
def test_every_workflow_has_a_versioning_behaviour(cls: type) -> None:
    name = workflow._Definition.must_from_class(cls).name or ""
    assert VERSIONING[cls] == EXPECTED.get(name, VersioningBehavior.PINNED)


def test_unversioned_workers_leave_the_definitions_undeclared() -> None:
    """The server refuses a declared behaviour from an unversioned worker: dev and tests stay unversioned."""
    worker_options(Settings())
    assert all(workflow._Definition.must_from_class(cls).versioning_behavior in (None, VersioningBehavior.UNSPECIFIED)
               for cls in WORKFLOWS)


async def test_a_bare_server_gets_every_search_attribute_of_every_kind() -> None:
    """A worker registers the attributes itself off Cloud: every kind in ALL (Keyword, Int, Double, Datetime)."""
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.testing import WorkflowEnvironment

    from runtime.temporal import ensure_search_attributes
    from tests.conftest import temporal_binary

    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(), ui=False)
    try:
        await ensure_search_attributes(env.client, search_attributes.ALL)
        await ensure_search_attributes(env.client, search_attributes.ALL)  # a second worker: nothing to add
        listed = await env.client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=env.client.namespace)
        )
    finally:
        await env.shutdown()
    assert {k.name for k in search_attributes.ALL} <= set(listed.custom_attributes)
    kinds = {k.indexed_value_type for k in search_attributes.ALL}
    assert len(kinds) >= 4  # the point of the test: more than Keyword and Int


def test_the_readme_lists_the_cloud_commands_for_every_attribute() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for command in search_attribute_commands("$NS", search_attributes.ALL):
        assert command in readme, f"README's Temporal Cloud section lacks: {command}"
