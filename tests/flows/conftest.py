"""Real flow runs against one Prefect test server for the whole session.

The server (a Prefect API server subprocess) starts once, on a throwaway PostgreSQL
database of the test server when there is one (as README's team setup runs it), else
on Prefect's own SQLite test harness. Every test gets its own registry home
(``.modelreg``: SQLite registry, artifacts, region folders, outbox) through the
``MODELREG_*`` variables that the flows read at their entry point. ``released_home``
is a home where the fraud team's release policy was set (as the main job does) and
two retrain runs then released v1 and v2 to Production, built once and copied per
test.
"""

from __future__ import annotations

import contextlib
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

POSTGRES_ENV = "MODELREG_TEST_POSTGRES_URL"  # as tests/conftest.py's

# Before Prefect or Great Expectations is imported anywhere in this process.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session", autouse=True)
def prefect_server(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """One Prefect test server and one result store for every flow test."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    storage = tempfile.mkdtemp(prefix="modelreg-prefect-results-")
    with contextlib.ExitStack() as stack:
        stack.enter_context(temporary_settings({PREFECT_RESULTS_LOCAL_STORAGE_PATH: Path(storage)}))
        if os.environ.get(POSTGRES_ENV, "").strip():
            stack.enter_context(prefect_on_postgres(request.getfixturevalue("postgres_server")))
        else:
            stack.enter_context(prefect_test_harness(server_startup_timeout=90))
        yield {
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "PREFECT_RESULTS_LOCAL_STORAGE_PATH": storage,
        }
    shutil.rmtree(storage, ignore_errors=True)


@contextlib.contextmanager
def prefect_on_postgres(postgres: Any) -> Iterator[None]:
    """``prefect_test_harness`` on a new database of the PostgreSQL test server, and
    without flow-run heartbeats.

    The heartbeats (Prefect's crash detector, which no test here relies on) cost about
    0.85 s at the end of every flow run: the engine joins their thread, which sleeps in
    1 s steps. Without that pause, back-to-back runs on the harness's SQLite file meet
    its write lock ("database is locked", which the client retries after 2 s);
    PostgreSQL takes them.
    """
    import prefect.context
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.server.database.dependencies import temporary_database_interface
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
        temporary_settings,
    )
    from prefect.testing.utilities import _find_available_port
    from sqlalchemy.engine import make_url

    url = make_url(postgres.create_database("prefect_test"))
    database = url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    server = SubprocessASGIServer(port=_find_available_port())
    prior = SubprocessASGIServer._instances.get(None)
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(temporary_database_interface())
            stack.enter_context(
                temporary_settings({PREFECT_SERVER_DATABASE_CONNECTION_URL: database})
            )
            # As the harness does: code that asks for the default server gets this one.
            SubprocessASGIServer._instances[None] = server
            server.start(timeout=90)
            stack.enter_context(
                temporary_settings(
                    {PREFECT_API_URL: server.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
                )
            )
            stack.enter_context(
                prefect.context._temporary_global_settings_context(
                    prefect.context.get_settings_context()
                )
            )
            try:
                yield
            finally:
                # Logs and events first, or they meet a stopped server.
                APILogWorker.drain_all()
                EventsWorker.drain_all()
                server.stop()
    finally:
        if prior is not None:
            SubprocessASGIServer._instances[None] = prior
        else:
            SubprocessASGIServer._instances.pop(None, None)
        postgres.drop_database(url.render_as_string(hide_password=False))


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
