"""``ArtifactStore.iter_content`` on a local folder and an S3 bucket: every object under a
content key with its size and time, and nothing else (backups, temporary uploads,
stray files, keys under the wrong shard)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from registry.artifacts import ArtifactStore
from registry.models import ArtifactRef

from .test_gc import read_raw, write_raw


@pytest.fixture
def artifacts(kind: str, make_artifacts: Callable[[str], ArtifactStore]) -> ArtifactStore:
    return make_artifacts(kind)


def put(artifacts: ArtifactStore, tmp_path: Path, data: bytes) -> ArtifactRef:
    path = tmp_path / f"upload-{len(data)}-{os.urandom(4).hex()}"
    path.write_bytes(data)
    return artifacts.put_file(path)


def test_lists_every_content_key_with_size_and_time(
    artifacts: ArtifactStore, tmp_path: Path
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=5)
    refs = [put(artifacts, tmp_path, os.urandom(size)) for size in (0, 10, 3000)]
    listed = sorted(artifacts.iter_content())
    assert [(o.sha256, o.size) for o in listed] == sorted((r.sha256, r.size) for r in refs)
    for obj in listed:
        assert obj.last_modified.tzinfo is not None
        assert start <= obj.last_modified <= datetime.now(UTC) + timedelta(seconds=5)


def test_lists_nothing_but_content_keys(artifacts: ArtifactStore, tmp_path: Path) -> None:
    stray = [
        "backups/registry.tar",
        "sha256/00/" + "ab" * 32,  # the wrong shard
        "sha256/ab/" + "AB" * 32,  # upper case is not a digest this store writes
        "sha256/ab/." + "ab" * 32 + ".x.part",  # a local write in progress
        "tmp/0123",  # an S3 stream upload in progress
        "other/file",
    ]
    write_raw(artifacts, stray)
    ref = put(artifacts, tmp_path, b"model")
    assert [o.sha256 for o in artifacts.iter_content()] == [ref.sha256]
    assert read_raw(artifacts, stray) == stray


def test_an_empty_store_lists_nothing(artifacts: ArtifactStore) -> None:
    assert list(artifacts.iter_content()) == []
