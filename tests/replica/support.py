"""Helpers for the read-replica tests."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
from resolver.support import wait_for as _wait_for

T = TypeVar("T")
DEADLINE_S = 15.0


def wait_for(
    probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float = DEADLINE_S
) -> T:
    """``resolver.support.wait_for`` with this package's longer deadline (a standby
    replays, a server process starts)."""
    return _wait_for(probe, done, timeout=timeout)


class RegistryServer:
    """``modelreg server ARGS`` in a child process on a free port, ready when its
    health route answers (output kept in ``log``)."""

    def __init__(self, args: list[str], log: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.args = args
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> RegistryServer:
        command = [sys.executable, "-m", "registry.cli.main", "server", *self.args]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*command, "--port", str(self.port)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout}s: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
