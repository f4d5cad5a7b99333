"""The task runner is a setting: the whole retrain run on a local Dask cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from flow_helpers import MODEL, ROWS, THIRD, open_store

from flows.retrain import retrain_flow
from flows.runner import task_runner

pytestmark = pytest.mark.slow


def test_retrain_on_a_local_dask_cluster(home: Path) -> None:
    runner = task_runner("dask")
    assert type(runner).__name__ == "DaskTaskRunner"
    state = retrain_flow.with_options(task_runner=runner)(
        model=MODEL, as_of=THIRD, rows=ROWS, return_state=True
    )
    assert state.is_completed(), state.message
    with open_store(home) as store:
        assert store.get_model(MODEL).production == 1
        assert {r.state.value for r in store.replicas(MODEL, 1)} == {"verified"}
