"""Resolvers whose registry is a ``modelreg server``: they follow its event stream,
keep serving while it is down, pick up again after it restarts, and two hundred of
them in one process cost the database nothing (only the server talks to it).

The registry is the usual one of these tests (three trained models, replicated and
released through the gates), but every write goes through the server as an admin
token and the resolvers hold a reader token: nothing in this process opens the
database once the server runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from server.conftest import ServerProcess
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import Pool

from registry.auth import Role
from registry.config import Settings
from registry.pipeline.training import TrainingResult
from registry.resolver import Resolver
from registry.store.http import HttpStore
from registry.store.sql import SqlStore

from .conftest import MODEL, REF, Registry
from .support import wait_for

SERVER_APP = "modelreg-test-server"  # the server's connections, as PostgreSQL names them
TRAP_APP = "modelreg-test-resolvers"  # any this test process would open
FOLLOW_S = 20.0  # generous: a restarted server and a reconnect with backoff


@dataclass
class Remote:
    """A registry behind a server process: writes as admin, resolvers as a reader."""

    server: ServerProcess
    registry: Registry
    reader: Settings
    db_url: str


@pytest.fixture
def remote(store_url: str, tmp_path: Path, trained: list[TrainingResult]) -> Iterator[Remote]:
    """``fraud-detector`` v1-v3 registered and v1 in Production, all through the server."""
    with SqlStore(store_url, actor="test-admin") as db:
        _made, admin = db.create_token("release-bot", Role.ADMIN)
        _made, reader = db.create_token("resolvers", Role.READER)
    server = ServerProcess(
        store_url, tmp_path / "server.log", env={"PGAPPNAME": SERVER_APP}
    ).start()
    place = {
        "home": tmp_path / "home",
        "registry_url": server.url,
        "artifact_root": str(tmp_path / "artifacts"),
        "actor": "release-bot",
    }
    writer = Settings(**place, token=admin)
    registry = Registry(writer, writer.connect(), trained, tmp_path)  # type: ignore[arg-type]
    try:
        for model in range(3):
            registry.register(model)
        registry.promote(1)
        yield Remote(server, registry, Settings(**place, token=reader), store_url)
    finally:
        registry.close()
        server.stop()


def _follower(remote: Remote, **options: Any) -> Resolver:
    options = {"ttl_s": 3600, "heartbeat_s": 3600, **options}
    return remote.registry.resolver(settings=remote.reader, **options)


def test_resolvers_behind_a_server_follow_a_promotion_and_a_rollback(remote: Remote) -> None:
    resolver = _follower(remote)
    assert resolver.get(REF).version == 1
    remote.registry.promote(2)
    wait_for(lambda: resolver.get(REF).version, lambda v: v == 2)
    change = remote.registry.store.rollback(MODEL, reason="v2 flags every other payment")
    served = wait_for(lambda: resolver.get(REF), lambda s: s.version == 1)
    assert served.generation == change.generation
    [status] = wait_for(resolver.status, lambda s: s[0].behind == 0)
    assert not status.degraded
    assert isinstance(resolver._store, HttpStore)


def test_the_event_stream_alone_wakes_them_before_and_after_a_restart(remote: Remote) -> None:
    # The poll is an hour away: only an event on the server's stream can wake them.
    fleet = [_follower(remote, poll_s=3600) for _ in range(3)]
    remote.registry.promote(2)
    wait_for(lambda: {r.get(REF).version for r in fleet}, lambda seen: seen == {2})
    remote.server.restart()  # SIGKILL, then a new process on the same port
    remote.registry.promote(3)
    wait_for(
        lambda: {r.get(REF).version for r in fleet}, lambda seen: seen == {3}, timeout=FOLLOW_S
    )


def test_they_keep_serving_while_the_server_is_down(remote: Remote) -> None:
    resolver = _follower(remote)
    assert resolver.get(REF).version == 1
    remote.server.kill()
    [status] = wait_for(resolver.status, lambda s: s[0].degraded)
    assert "unreachable" in (status.reason or ""), status.reason
    assert "keeping v1" in (status.reason or ""), status.reason
    assert resolver.get(REF).version == 1  # serving all along
    remote.server.start()
    remote.registry.promote(2)
    wait_for(lambda: resolver.get(REF).version, lambda v: v == 2, timeout=FOLLOW_S)
    [status] = wait_for(resolver.status, lambda s: not s[0].degraded, timeout=FOLLOW_S)
    assert status.version == 2


FLEET = 200


class Connections:
    """Database connections opened by this process: SQLAlchemy's pool connects (every
    store's) and, on PostgreSQL, the server's own view of who is connected, where
    this process's connections carry ``PGAPPNAME`` (psycopg's, LISTEN's included)."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.pooled = 0
        event.listen(Pool, "connect", self._on_connect)

    def _on_connect(self, *_args: Any) -> None:
        self.pooled += 1

    def close(self) -> None:
        event.remove(Pool, "connect", self._on_connect)

    def named(self, application: str) -> int:
        """Connections to the database that PostgreSQL shows under ``application``."""
        url = make_url(self.db_url).set(drivername="postgresql", query={})
        conninfo = url.render_as_string(hide_password=False)
        with psycopg.connect(conninfo, application_name="modelreg-test-probe") as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                (application,),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def files_open(self) -> list[str]:
        """This process's open files that are the SQLite database (or its WAL)."""
        database = make_url(self.db_url).database or ""
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(database):
                found.append(target)
        return found


@pytest.fixture
def connections(remote: Remote) -> Iterator[Connections]:
    watching = Connections(remote.db_url)
    yield watching
    watching.close()


def test_two_hundred_resolvers_follow_one_server_and_never_touch_the_database(
    remote: Remote, connections: Connections, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The probes see a store of this process when there is one.
    with SqlStore(remote.db_url, actor="probe") as db:
        db.latest_seq()
        if backend == "sqlite":
            assert connections.files_open()
        else:
            assert connections.named(SERVER_APP) > 0
    assert connections.pooled > 0
    connections.pooled = 0
    # Anything that fell back to the environment would open the database itself.
    monkeypatch.setenv("MODELREG_URL", remote.db_url)
    monkeypatch.setenv("PGAPPNAME", TRAP_APP)

    fleet = [_follower(remote, poll_s=0.25) for _ in range(FLEET)]
    assert {r.get(REF).version for r in fleet} == {1}
    remote.registry.promote(2)
    wait_for(lambda: {r.get(REF).version for r in fleet}, lambda seen: seen == {2}, timeout=30)

    if backend == "sqlite":
        assert connections.files_open() == []
    else:
        assert connections.named(TRAP_APP) == 0
    assert connections.pooled == 0
    assert all(isinstance(r._store, HttpStore) for r in fleet)
    [channel] = {id(r._channel): r._channel for r in fleet}.values()
    assert channel is not None
    assert isinstance(channel._store, HttpStore)
