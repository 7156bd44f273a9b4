"""Refund runs recorded before the ledger's rule settled a processor answer in one activity still replay.

Recorded on the code of fc57edb (fake activities, the fixture key of `test_bulk_replay.py`):
`refund_confirmed_by_webhook.json` submits, is told `pending`, waits in confirming-refund and is
confirmed by the `processor_update` signal (two `move_refund` calls for the processor's answers);
`refund_late_failure_marked.json` is a late-failure run that moves the refund to refund-error and
is marked refunded by finance. A worker of this version that picks such a run up after a deploy
must take the old path (`workflow.patched`), not fail the workflow task.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from runtime.codec import data_converter
from tests.e2e.test_bulk_replay import FIXTURE_CODEC, HISTORIES
from workflows.refund import RefundWorkflow


@pytest.mark.parametrize("name", ["refund_confirmed_by_webhook", "refund_late_failure_marked"])
async def test_a_refund_recorded_before_the_settle_activity_replays(name: str) -> None:
    history = WorkflowHistory.from_json(f"refund/{name}", (HISTORIES / f"{name}.json").read_text())
    activities = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert "move_refund" in activities and "settle_refund" not in activities  # recorded before the change
    replayer = Replayer(workflows=[RefundWorkflow], data_converter=data_converter(FIXTURE_CODEC), build_id="orders")
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
