"""The serving tests' harness: a real registry in a folder, and real HTTP servers on it.

``Registry`` is a SQLite registry, an artifact folder and three region folders:
versions are registered as skops files, copied into every region by
``registry.replication`` and promoted through the default policy's gates.
``Server`` runs ``modelreg serve`` as a subprocess on a free 127.0.0.1 port;
``ThreadServer`` runs an app under uvicorn in a thread, for the fine-grained tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from registry.client import register_file
from registry.config import Settings
from registry.models import Stage
from registry.replication import region_stores, replicate
from registry.store.base import RegistryStore

MODEL = "fraud-detector"
REGION = "eu-west"
START_TIMEOUT_S = 60.0


class Registry:
    """One registry in a folder, and what a release pipeline does to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            "MODELREG_HOME": str(root / "home"),
            "MODELREG_URL": f"sqlite:///{root / 'registry.db'}",
            "MODELREG_ARTIFACTS": str(root / "artifacts"),
            "MODELREG_USER": "pipeline@test",
        }
        self.settings = Settings.from_env(self.env)
        self.db = root / "registry.db"

    def store(self) -> RegistryStore:
        return self.settings.connect()

    def register(self, model: Any) -> int:
        """Register a ``TrainingResult`` of the example workload; its version number."""
        return self.register_file(Path(model.model_path), model.signature, model.params)

    def register_file(
        self, path: Path, signature: dict[str, Any], params: dict[str, Any] | None = None
    ) -> int:
        meta = {"signature": signature, "params": params or {}}
        with self.store() as store:
            return register_file(store, self.settings.artifacts(), MODEL, path, meta).version

    def release(self, version: int) -> None:
        """Staging, real copies into every region, health and canary, then Production."""
        with self.store() as store:
            store.transition(MODEL, version, Stage.STAGING)
            replicas = replicate(
                store, self.settings.artifacts(), region_stores(self.settings), MODEL, version
            )
            assert all(r.state.value == "verified" for r in replicas), replicas
            for region in self.settings.regions:
                store.record_check(
                    MODEL, version, "health", region=region, passed=True, evidence={}
                )
            production = store.get_model(MODEL).production
            store.record_check(
                MODEL,
                version,
                "canary",
                passed=True,
                evidence={"decision": "non-inferior", "baseline_version": production},
            )
            store.transition(MODEL, version, Stage.PRODUCTION)

    def rollback(self) -> None:
        with self.store() as store:
            store.rollback(MODEL, reason="bad release")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def _answers(client: httpx.Client, path: str) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx.TransportError:
        return False


class Server:
    """``modelreg serve`` in a subprocess, with an HTTP client on it."""

    def __init__(self, registry: Registry, args: list[str]) -> None:
        self.port = free_port()
        self.log = registry.root / f"serve-{self.port}.log"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
        env = {**inherited, **registry.env}
        command = [sys.executable, "-m", "registry.cli.main", "serve", *args]
        command += ["--region", REGION, "--port", str(self.port)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=registry.root
            )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def wait_up(self) -> Server:
        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"modelreg serve exited: {self.output()}")
            return _answers(self.client, "/healthz")

        wait_until(up, START_TIMEOUT_S, "modelreg serve to answer /healthz")
        return self

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=20)


class ThreadServer:
    """uvicorn serving one app in a thread of this process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        wait_until(lambda: _answers(self.client, "/healthz"), 20, "uvicorn to answer")

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)
