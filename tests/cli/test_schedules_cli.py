"""`ticketops schedules apply|list` against the real dev server, configured by the environment as in production."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from temporalio.client import Client
from typer.testing import CliRunner, Result

from backoffice.cli.main import app as ticketops
from runtime.settings import get_settings
from tests.codec_keys import TEST_CODEC


def _env(client: Client, prefix: str, **extra: str) -> dict[str, str]:
    keys = {k: v.get_secret_value() for k, v in TEST_CODEC.keys.items()}
    return {
        "TICKETOPS_TEMPORAL__ADDRESS": client.service_client.config.target_host,
        "TICKETOPS_TEMPORAL__QUEUE_PREFIX": prefix,
        "TICKETOPS_CODEC__KEYS": json.dumps(keys),
        "TICKETOPS_CODEC__ACTIVE_KEY_ID": TEST_CODEC.active_key_id,
        "COLUMNS": "200",
        **extra,
    }


async def _run(env: dict[str, str], *args: str) -> Result:
    def invoke() -> Result:
        get_settings.cache_clear()  # the command reads its settings from this environment
        try:
            return CliRunner().invoke(ticketops, list(args), env=env)
        finally:
            get_settings.cache_clear()

    return await asyncio.to_thread(invoke)


def _json(result: Result) -> Any:
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


async def test_apply_twice_then_list(temporal_client: Client, queue_prefix: str) -> None:
    env = _env(temporal_client, queue_prefix, TICKETOPS_RECONCILIATION__HOUR="3",
               TICKETOPS_RECONCILIATION__TIME_ZONE="UTC", TICKETOPS_RECONCILIATION__PAUSED="true")  # fmt: skip
    sid = f"{queue_prefix}reconcile-stripe"
    try:
        first = _json(await _run(env, "schedules", "apply", "--json"))
        assert [(a["schedule_id"], a["outcome"], a["paused"]) for a in first] == [(sid, "created", True)]
        second = _json(await _run(env, "schedules", "apply", "--json"))
        assert [(a["schedule_id"], a["outcome"]) for a in second] == [(sid, "updated")]
        listed = _json(await _run(env, "schedules", "list", "--json"))
        assert [(v["schedule_id"], v["exists"], v["spec"], v["time_zone"], v["overlap"], v["paused"])
                for v in listed] == [(sid, True, "daily at 3:30", "UTC", "SKIP", True)]  # fmt: skip
        table = await _run(env, "schedules", "list")
        assert table.exit_code == 0 and sid in table.stdout and "paused" in table.stdout
        printed = await _run(env, "schedules", "apply")
        assert f"{sid}: updated" in printed.stdout
    finally:
        await temporal_client.get_schedule_handle(sid).delete()
    missing = await _run(env, "schedules", "list")
    assert missing.exit_code == 0 and "missing" in missing.stdout


async def test_nothing_to_apply_for_manual_only(temporal_client: Client, queue_prefix: str) -> None:
    env = _env(temporal_client, queue_prefix, TICKETOPS_RECONCILIATION__PROCESSORS='["manual", "free"]')
    assert _json(await _run(env, "schedules", "apply", "--json")) == []
    printed = await _run(env, "schedules", "apply")
    assert "no processor to reconcile" in printed.stdout


async def test_unreachable_temporal_exits_1(temporal_client: Client, queue_prefix: str) -> None:
    env = _env(temporal_client, queue_prefix, TICKETOPS_TEMPORAL__ADDRESS="127.0.0.1:1")
    result = await _run(env, "schedules", "apply")
    assert result.exit_code == 1
    assert "unreachable" in result.stdout


async def test_the_dev_stack_applies_them_as_an_operator_would(temporal_client: Client, queue_prefix: str) -> None:
    """`ticketops dev` runs `ticketops schedules apply` in its own process and prints what it did."""
    import os

    from devtools.stack import _apply_schedules

    env = {**os.environ, **_env(temporal_client, queue_prefix, TICKETOPS_RECONCILIATION__PAUSED="true")}
    sid = f"{queue_prefix}reconcile-stripe"
    try:
        printed = await asyncio.to_thread(_apply_schedules, env)
        assert printed.startswith(f"{sid}: created"), printed
        assert (await temporal_client.get_schedule_handle(sid).describe()).schedule.state.paused
    finally:
        await temporal_client.get_schedule_handle(sid).delete()
    broken = await asyncio.to_thread(_apply_schedules, {**env, "TICKETOPS_TEMPORAL__ADDRESS": "127.0.0.1:1"})
    assert broken.startswith("not applied") and "ticketops schedules apply" in broken
