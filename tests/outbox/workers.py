"""Process entry points for the outbox tests (importable by 'spawn' children)."""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time
from pathlib import Path

from registry.models import ArtifactRef, VersionCreate
from registry.outbox import Outbox
from registry.store.sql import SqlStore


def artifact(data: bytes) -> ArtifactRef:
    """A content-addressed reference for ``data`` (the bytes need not exist)."""
    digest = hashlib.sha256(data).hexdigest()
    return ArtifactRef(uri=f"file:///artifacts/{digest}", sha256=digest, size=len(data))


def drain(outbox_path: str, registry_url: str, start_at: float) -> list[tuple[str, str, int]]:
    """Drain the outbox into the registry, starting at the same moment as the others."""
    outbox = Outbox(Path(outbox_path))
    with SqlStore(registry_url, actor=f"drainer-{os.getpid()}") as store:
        time.sleep(max(0.0, start_at - time.time()))
        return outbox.drain(store).delivered


def enqueue_then_die(outbox_path: str, artifact_json: str) -> None:
    """Enqueue one registration, say its key, then die at once without any cleanup."""
    key = Outbox(Path(outbox_path)).enqueue(
        "fraud", ArtifactRef.model_validate_json(artifact_json), VersionCreate()
    )
    sys.stdout.write(key + "\n")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    enqueue_then_die(sys.argv[1], sys.argv[2])
