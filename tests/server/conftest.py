"""Real registry server processes for the server tests.

``ServerProcess`` runs ``modelreg server`` as a child process on a free port of
127.0.0.1 and waits for ``/api/v1/health``; tests kill and restart it. ``served``
(one per test) and ``module_served`` (one per test module) give a running server on
every backend (a fresh SQLite file, or a fresh PostgreSQL schema) with an admin
token, and make tokens of any role straight in the database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from registry.auth import Role
from registry.store.sql import SqlStore

READY_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """``modelreg server`` in a child process (stdout and stderr kept in ``log``)."""

    def __init__(
        self,
        registry_url: str,
        log: Path,
        *,
        port: int | None = None,
        workers: int = 1,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.registry_url = registry_url
        self.port = port or free_port()
        self.workers = workers
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        command = [
            sys.executable,
            "-m",
            "registry.cli.main",
            "server",
            "--registry",
            self.registry_url,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            *self.args,
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=self.env
            )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s: {self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL the server and its workers: no shutdown, nothing flushed."""
        if self.proc is None:
            return
        if self.workers > 1:
            _kill_children(self.proc.pid)
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()


def _kill_children(pid: int) -> None:
    found = subprocess.run(["pgrep", "-P", str(pid)], check=False, capture_output=True, text=True)
    for child in found.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(child), signal.SIGKILL)


@dataclass
class Served:
    """A running server over a registry database, and an admin token for it."""

    server: ServerProcess
    db_url: str
    admin: str  # the admin token's secret
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def token(self, name: str, role: Role | str, *scopes: str) -> str:
        """A new token made straight in the database (as ``modelreg token create`` does)."""
        with SqlStore(self.db_url, actor="test-admin") as store:
            _made, secret = store.create_token(name, Role(role), scopes=scopes or ("*",))
        self.tokens[name] = secret
        return secret

    def client(self, secret: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret or self.admin}"}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def db(self, actor: str = "test-reader") -> SqlStore:
        return SqlStore(self.db_url, actor=actor)


def _registry_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":  # a copy of the migrated template: no migration per server
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "served.db")
        yield f"sqlite:///{tmp_path}/served.db"
        return
    database = request.getfixturevalue("postgres_database")
    url = database.create_schema("served")
    yield url
    database.drop_schema(url)


def _serve(url: str, log: Path) -> Iterator[Served]:
    with SqlStore(url, actor="test-admin") as store:
        _made, admin = store.create_token("admin", Role.ADMIN)
    server = ServerProcess(url, log).start()
    try:
        yield Served(server, url, admin, {"admin": admin})
    finally:
        server.stop()


@pytest.fixture
def served(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """A server of its own for one test, on each backend."""
    for url in _registry_url(backend, tmp_path, request):
        yield from _serve(url, tmp_path / "server.log")


@pytest.fixture(scope="module")
def module_served(
    module_store_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One server per test module and backend: tests use model names of their own."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    yield from _serve(module_store_url, log)
