"""Every recorded history replays on the current workflow code, with the production data converter.

A change to a workflow that would make a run in flight take a different path on replay (an
activity added, removed or reordered, a timer changed, a handler moved) fails here, as it would
fail that run's next workflow task after a deploy. Such a change needs a `workflow.patched`
branch, and the old history stays in the corpus next to a new one. Record with
`python -m tests.replay.record` (see there).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from runtime.codec import data_converter
from tests.codec_keys import REPLAY_CODEC
from workers.build import SANDBOX, WORKFLOWS

HISTORIES = Path(__file__).parent / "histories"
TYPES = sorted(workflow._Definition.must_from_class(cls).name or cls.__name__ for cls in WORKFLOWS)


def _load(path: Path) -> WorkflowHistory:
    """A recorded history: Temporal's JSON of the events, with the run's `workflowId` beside them."""
    data = json.loads(path.read_text())
    return WorkflowHistory.from_json(data.pop("workflowId"), data)


def test_every_workflow_type_has_a_recorded_history() -> None:
    recorded = {p.parent.name for p in HISTORIES.glob("*/*.json")}
    assert set(TYPES) <= recorded, f"no history for {sorted(set(TYPES) - recorded)}: python -m tests.replay.record"


@pytest.mark.parametrize("kind", TYPES)
async def test_recorded_histories_replay(kind: str) -> None:
    paths = sorted((HISTORIES / kind).glob("*.json"))
    if not paths:
        pytest.skip(f"no history of {kind} yet")  # the test above fails for it
    histories = [_load(p) for p in paths]
    # The replayer's queue is "replay-{build_id}"; workflows find their sibling queues from one ending in "orders".
    replayer = Replayer(
        workflows=list(WORKFLOWS), data_converter=data_converter(REPLAY_CODEC), build_id="orders",
        workflow_runner=SANDBOX,
    )
    failures: dict[str, str] = {}
    for path, history in zip(paths, histories, strict=True):
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures[path.name] = repr(result.replay_failure)
    assert not failures, failures
