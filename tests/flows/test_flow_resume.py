"""A retrain run killed between tasks, then re-run: nothing that finished runs again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import MODEL, ROWS, THIRD, open_store

from flows.retrain import retrain_flow

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("crash_child.py")


def completed_task_names(tag: str) -> set[str]:
    """Names of the completed task runs of the flow run carrying ``tag``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterTags,
        TaskRunFilter,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])),
            task_run_filter=TaskRunFilter(
                state=dict(type=TaskRunFilterStateType(any_=[StateType.COMPLETED]))
            ),
        )
    return {run.name.rsplit("-", 1)[0] for run in runs}


def test_a_run_killed_after_training_resumes_without_retraining(
    home: Path, prefect_server: dict[str, str]
) -> None:
    tag = f"crash-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **prefect_server}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), tag, THIRD.isoformat(), str(ROWS)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while "train" not in completed_task_names(tag):
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "training never completed"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL

    state = retrain_flow(model=MODEL, as_of=THIRD, rows=ROWS, return_state=True)
    assert state.is_completed(), state.message
    assert [s.name for s in train_states(state)] == ["Cached"]  # not trained again
    with open_store(home) as store:
        [version] = store.list_versions(MODEL)
        assert store.get_model(MODEL).production == version.version


def train_states(flow_state: Any) -> list[Any]:
    """The states of the ``train`` task runs of one flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run_id = flow_state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return [r.state for r in runs if r.name.startswith("train-")]
