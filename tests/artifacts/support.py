"""Helpers for the artifact tests: raw access behind a store's back, free ports."""

from __future__ import annotations

import random
import socket

from registry.artifacts import ArtifactStore, LocalArtifactStore, content_key
from registry.artifacts.s3 import S3ArtifactStore

MIB = 1024 * 1024
TEST_MULTIPART_THRESHOLD = 5 * MIB  # S3's minimum part size


def pattern(seed: int) -> bytes:
    return random.Random(seed).randbytes(MIB + 7)  # odd length: chunks don't line up with MiBs


def overwrite_stored(store: ArtifactStore, sha256: str, data: bytes) -> None:
    """Replace the stored bytes behind the store's back (tampering, truncation)."""
    if isinstance(store, LocalArtifactStore):
        (store.root / content_key(sha256)).write_bytes(data)
    else:
        assert isinstance(store, S3ArtifactStore)
        key = f"{store.prefix}/{content_key(sha256)}"
        store.client.put_object(
            Bucket=store.bucket, Key=key, Body=data, Metadata={"sha256": sha256}
        )


def stored_objects(store: ArtifactStore) -> list[str]:
    """Every object or file the store holds (temporaries included)."""
    if isinstance(store, LocalArtifactStore):
        if not store.root.exists():
            return []
        return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())
    assert isinstance(store, S3ArtifactStore)
    response = store.client.list_objects_v2(Bucket=store.bucket)
    return sorted(item["Key"] for item in response.get("Contents", []))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
