"""Bulk runs recorded by earlier versions of the engine still replay on this one.

`bulk_delivery_waves.json` is a bulk delivery of 8 buyers (batch 3, window 2) recorded
before the sliding window: three batches in two waves, no patch marker. A worker that
picked such a run up after a deploy must replay it as it ran, not fail the workflow task.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from runtime.codec import data_converter
from tests.codec_keys import REPLAY_CODEC
from workflows.bulk_delivery import BulkDeliveryWorkflow

HISTORIES = Path(__file__).parent / "histories"
# The recording's payloads are encrypted, as every run's are, with the replay corpus's test key.
FIXTURE_CODEC = REPLAY_CODEC


async def test_a_run_recorded_in_waves_replays() -> None:
    history = WorkflowHistory.from_json("bulk-delivery/waves", (HISTORIES / "bulk_delivery_waves.json").read_text())
    scheduled = [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
    assert len(scheduled) == 5  # prepare, three batches, finish: the recording is what this test says it is
    # The replayer polls "replay-{build_id}"; the engine finds its email queue from a queue ending in "orders".
    replayer = Replayer(
        workflows=[BulkDeliveryWorkflow], data_converter=data_converter(FIXTURE_CODEC), build_id="orders"
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
