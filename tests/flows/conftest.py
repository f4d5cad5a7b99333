"""Real flow runs against one Prefect test server for the whole session.

The harness (a Prefect API server subprocess on a temporary SQLite database) starts
once; every test gets its own registry home (``.modelreg``: SQLite registry,
artifacts, region folders, outbox) through the ``MODELREG_*`` variables that the
flows read at their entry point. ``released_home`` is a home where the fraud
team's release policy was set (as the main job does) and two retrain runs then
released v1 and v2 to Production, built once and copied per test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import (
    ENV_KEYS,
    FIRST,
    MODEL,
    ROWS,
    SECOND,
    fraud_policy,
    point_at,
    set_policy,
    use_home,
)

# Before Prefect or Great Expectations is imported anywhere in this process.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[dict[str, str]]:
    """One Prefect test server and one result store for every flow test."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    storage = tempfile.mkdtemp(prefix="modelreg-prefect-results-")
    with (
        temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: Path(storage)}),
        prefect_test_harness(server_startup_timeout=90),
    ):
        yield {
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PREFECT_RESULTS_LOCAL_STORAGE_PATH": storage,
        }
    shutil.rmtree(storage, ignore_errors=True)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty registry home for this test."""
    return use_home(monkeypatch, tmp_path / "modelreg")


@pytest.fixture(scope="session")
def released_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The fraud policy, then two retrain runs on successive dates: v1, then v2
    replacing it in Production."""
    from flows.retrain import retrain_flow

    home = tmp_path_factory.mktemp("released") / "modelreg"
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.update(point_at(home))
    try:
        set_policy(home, fraud_policy(), reason="the fraud team's release policy")
        states = [
            retrain_flow(model=MODEL, as_of=day, rows=ROWS, return_state=True)
            for day in (FIRST, SECOND)
        ]
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {"home": home, "states": states}


@pytest.fixture
def released_home(
    released_template: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A copy of the released template (v2 in Production, v1 archived) for this test."""
    for state in released_template["states"]:
        assert state.is_completed(), state.message
    home = tmp_path / "modelreg"
    shutil.copytree(released_template["home"], home)
    return use_home(monkeypatch, home)
