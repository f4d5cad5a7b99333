"""A real PostgreSQL streaming replica for the read-replica tests.

The shared test server (5432) takes no replication connections, so each test session
(each xdist worker) makes its own pair: ``initdb`` a primary on a free port of
127.0.0.1 with ``wal_level=replica``, ``pg_basebackup -R -X stream`` a hot standby of
it onto another port, and start both (as user ``postgres`` when the tests run as root:
PostgreSQL refuses to run as root). Teardown stops both and removes their folders.

``replicated`` gives each test a fresh registry: a new schema on the primary, migrated
the normal way (``SqlStore``), and the same schema on the standby once it has replayed
it. ``pause()`` / ``resume()`` stop and restart the standby's replay (the lag a test
wants); ``stop_replica()`` / ``start_replica()`` take it down and up.

Without PostgreSQL binaries the tests skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from registry.store.sql import SqlStore

DATABASE = "registry"
WAIT_S = 30.0


def _bin_dir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name or 0)
    )
    for folder in reversed(found):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_basebackup").exists():
            return Path(folder)
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_basebackup") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Cluster:
    """One PostgreSQL data folder and the server running on it."""

    def __init__(self, bin_dir: Path, root: Path, name: str, as_user: list[str]) -> None:
        self.bin = bin_dir
        self.data = root / name
        self.log = root / f"{name}.log"
        self.socket_dir = root
        self.port = 0
        self.as_user = as_user

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def run(self, tool: str, *args: str) -> None:
        command = [*self.as_user, str(self.bin / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {done.stderr.strip()}\n{log[-2000:]}")

    def configure(self, port: int, **settings: str) -> None:
        self.port = port
        lines = [
            "listen_addresses = '127.0.0.1'",
            f"port = {port}",
            f"unix_socket_directories = '{self.socket_dir}'",
            "fsync = off",  # throwaway clusters: only crash durability changes
            "full_page_writes = off",
            *(f"{key} = {value}" for key, value in settings.items()),
        ]
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n" + "\n".join(lines) + "\n")

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        self.run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-t", "30")

    def running(self) -> bool:
        command = [*self.as_user, str(self.bin / "pg_ctl"), "status", "-D", str(self.data)]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


def _sql(url: str, statement: str, **params: object) -> object:
    engine = sa.create_engine(
        make_url(url).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.NullPool,
    )
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text(statement), params)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


@dataclass
class ReplicaPair:
    """A primary and its hot standby, both running."""

    primary: Cluster
    replica: Cluster
    root: Path

    def pause(self) -> None:
        """Stop replaying the primary's log: the standby serves what it had, and lags."""
        _sql(self.replica.url, "SELECT pg_wal_replay_pause()")

    def resume(self) -> None:
        _sql(self.replica.url, "SELECT pg_wal_replay_resume()")

    def wait_caught_up(self, timeout: float = WAIT_S) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        target = _sql(self.primary.url, "SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            behind = _sql(
                self.replica.url,
                "SELECT pg_wal_lsn_diff(CAST(:lsn AS pg_lsn), pg_last_wal_replay_lsn())",
                lsn=target,
            )
            if behind is not None and float(str(behind)) <= 0:
                return
            time.sleep(0.02)
        raise AssertionError(f"the replica did not replay up to {target} in {timeout}s")

    def restore(self) -> None:
        """Whatever a test did to the standby, leave it running and replaying."""
        if not self.replica.running():
            self.start_replica()
        self.resume()

    def stop_replica(self) -> None:
        self.replica.stop()

    def start_replica(self) -> None:
        self.replica.start()


def _make_pair(bin_dir: Path) -> ReplicaPair:
    root = Path(tempfile.mkdtemp(prefix="modelreg-replica-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    primary = Cluster(bin_dir, root, "primary", as_user)
    replica = Cluster(bin_dir, root, "replica", as_user)
    try:
        primary.run("initdb", "-D", str(primary.data), "-A", "trust", "-U", "postgres", "--no-sync")
        primary.configure(_free_port(), wal_level="replica", max_wal_senders="5")
        (primary.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host replication all 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 trust\n"
        )
        primary.start()
        _sql(primary.url.replace(f"/{DATABASE}", "/postgres"), f'CREATE DATABASE "{DATABASE}"')
        replica.run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(replica.data), "-R", "-X", "stream", "-c", "fast"),
        )
        replica.configure(_free_port(), hot_standby="on")
        replica.start()
    except BaseException:  # a half-made pair: stop what runs, remove the folders
        replica.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return ReplicaPair(primary, replica, root)


@pytest.fixture(scope="session")
def replica_pair() -> Iterator[ReplicaPair]:
    bin_dir = _bin_dir()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        reason = "the read-replica tests need PostgreSQL's initdb and pg_basebackup"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI=true: they must run)")
        pytest.skip(reason)
    pair = _make_pair(bin_dir)
    try:
        yield pair
    finally:
        pair.replica.stop()
        pair.primary.stop()
        shutil.rmtree(pair.root, ignore_errors=True)


@dataclass
class Replicated:
    """One test's registry: the primary's URL, the standby's, and the pair."""

    primary_url: str
    replica_url: str
    pair: ReplicaPair

    def primary_store(self, actor: str = "other-client") -> SqlStore:
        """A plain store on the primary: another client, writing past any replica."""
        return SqlStore(self.primary_url, actor=actor)


def _in_schema(url: str, schema: str) -> str:
    return (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


def _fresh_registry(pair: ReplicaPair) -> Iterator[Replicated]:
    """A fresh registry schema on the primary, replayed on the standby."""
    schema = f"reg_{uuid.uuid4().hex[:12]}"
    _sql(pair.primary.url, f'CREATE SCHEMA "{schema}"')
    primary_url = _in_schema(pair.primary.url, schema)
    SqlStore(primary_url, actor="conftest").close()  # the normal migration path
    pair.wait_caught_up()
    yield Replicated(primary_url, _in_schema(pair.replica.url, schema), pair)
    pair.restore()
    _sql(pair.primary.url, f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def replicated(replica_pair: ReplicaPair) -> Iterator[Replicated]:
    """A registry of its own for one test."""
    yield from _fresh_registry(replica_pair)


@pytest.fixture(scope="module")
def module_replicated(replica_pair: ReplicaPair) -> Iterator[Replicated]:
    """One registry per test module (tests use model names of their own)."""
    yield from _fresh_registry(replica_pair)
