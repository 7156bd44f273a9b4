"""Workflow tests run on the time-skipping dev server: durable timers of days pass in milliseconds.

A workflow started under `env.with_time_skipping_disabled()` keeps real time until the test
moves its clock with `env.fast_forward(handle, duration)`, for steps that must wait for a signal
or an update before a timer fires.
"""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.workflows.fakes import Fakes


@pytest.fixture
def env(time_skipping_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return time_skipping_env


@pytest.fixture
def client(env: WorkflowEnvironment) -> Client:
    return env.client


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def wf_id() -> str:
    return f"wf-{uuid.uuid4().hex[:12]}"
