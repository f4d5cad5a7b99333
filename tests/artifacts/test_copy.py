"""copy_to between stores: streaming, server-side on one S3 endpoint, idempotent re-copies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from registry.artifacts import ArtifactStore
from registry.artifacts.s3 import S3ArtifactStore
from registry.errors import ChecksumMismatch

from .support import MIB, overwrite_stored, stored_objects

PAIRS = [("local", "local"), ("local", "s3"), ("s3", "local"), ("s3", "s3")]


def _refuse(*_: Any, **__: Any) -> Any:
    raise AssertionError("this copy path must not be used")


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_copy_to_puts_verified_bytes_in_the_target(
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    source_kind: str,
    target_kind: str,
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    ref = source.put_file(artifact(7 * MIB))
    copied = source.copy_to(ref, target)
    assert copied.uri == target.uri_for(ref.sha256)
    assert (copied.sha256, copied.size, copied.format) == (ref.sha256, ref.size, ref.format)
    target.verify(copied)
    assert len(stored_objects(target)) == 1  # no temporaries left behind


def test_s3_to_s3_on_one_endpoint_copies_server_side(
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, target = make_store("s3"), make_store("s3")
    ref = source.put_file(artifact(6 * MIB))
    monkeypatch.setattr(source, "open_stored", _refuse)  # no bytes through this process
    copied = source.copy_to(ref, target)
    monkeypatch.undo()
    target.verify(copied)


def test_s3_to_s3_on_another_endpoint_streams(
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = make_store("s3")
    assert isinstance(source, S3ArtifactStore)
    other = make_store("s3")
    assert isinstance(other, S3ArtifactStore)
    # Same server under another name: the stores cannot assume a shared endpoint.
    target = S3ArtifactStore(
        other.bucket, endpoint_url=s3_endpoint.replace("127.0.0.1", "localhost")
    )
    ref = source.put_file(artifact(1000))
    monkeypatch.setattr(target, "copy_server_side", lambda *_: False)
    target.verify(source.copy_to(ref, target))


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_copy_to_is_idempotent(
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    source_kind: str,
    target_kind: str,
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    ref = source.put_file(artifact(4000))
    first = source.copy_to(ref, target)
    monkeypatch.setattr(target, "put_verified", _refuse)
    monkeypatch.setattr(target, "copy_server_side", _refuse)
    assert source.copy_to(ref, target) == first


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_copy_to_replaces_a_corrupt_replica(
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    source_kind: str,
    target_kind: str,
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    ref = source.put_file(artifact(4000))
    copied = source.copy_to(ref, target)
    overwrite_stored(target, ref.sha256, b"corrupt")
    source.copy_to(ref, target)
    target.verify(copied)


@pytest.mark.parametrize(("source_kind", "target_kind"), [("local", "s3"), ("s3", "local")])
def test_streamed_copy_of_corrupt_source_leaves_target_without_it(
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    source_kind: str,
    target_kind: str,
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    ref = source.put_file(artifact(4000))
    overwrite_stored(source, ref.sha256, b"corrupt")
    with pytest.raises(ChecksumMismatch):
        source.copy_to(ref, target)
    assert not target.exists(ref.sha256)
    assert stored_objects(target) == []


def test_server_side_copy_of_truncated_source_is_refused(
    make_store: Callable[[str], ArtifactStore], artifact: Callable[..., Path]
) -> None:
    source, target = make_store("s3"), make_store("s3")
    ref = source.put_file(artifact(4000))
    overwrite_stored(source, ref.sha256, b"short")
    with pytest.raises(ChecksumMismatch):
        source.copy_to(ref, target)
    assert not target.exists(ref.sha256)
