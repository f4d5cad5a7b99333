"""copy_from between stores: kernel copy, upload from a path, server-side on one S3
endpoint, streaming; idempotent re-copies; no corrupt bytes left under a content key."""

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
def test_copy_from_puts_verified_bytes_in_the_target(
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    source_kind: str,
    target_kind: str,
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    ref = source.put_file(artifact(7 * MIB))
    copied = target.copy_from(source, ref)
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
    copied = target.copy_from(source, ref)
    monkeypatch.undo()
    target.verify(copied)


def test_s3_to_s3_on_another_endpoint_streams(
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    s3_endpoint: str,
) -> None:
    source = make_store("s3")
    other = make_store("s3")
    assert isinstance(other, S3ArtifactStore)
    # Same server under another name: the stores cannot assume a shared endpoint.
    target = S3ArtifactStore(
        other.bucket, endpoint_url=s3_endpoint.replace("127.0.0.1", "localhost")
    )
    ref = source.put_file(artifact(1000))
    target.verify(target.copy_from(source, ref))
    assert len(stored_objects(target)) == 1  # the temporary key of the stream is gone


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_copy_from_is_idempotent(
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    source_kind: str,
    target_kind: str,
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    ref = source.put_file(artifact(4000))
    first = target.copy_from(source, ref)
    monkeypatch.setattr(target, "_copy_in", _refuse)
    assert target.copy_from(source, ref) == first


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_copy_from_replaces_a_corrupt_replica(
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    source_kind: str,
    target_kind: str,
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    ref = source.put_file(artifact(4000))
    copied = target.copy_from(source, ref)
    overwrite_stored(target, ref.sha256, b"corrupt")
    target.copy_from(source, ref)
    target.verify(copied)
    assert len(stored_objects(target)) == 1


@pytest.mark.parametrize("damage", ["same size", "truncated"])
@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_a_copy_of_a_corrupt_source_leaves_nothing_in_the_target(
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    source_kind: str,
    target_kind: str,
    damage: str,
) -> None:
    """Same-size damage on one S3 endpoint is copied server-side and caught only by the
    read-back: that copy is deleted again."""
    source, target = make_store(source_kind), make_store(target_kind)
    ref = source.put_file(artifact(4000))
    overwrite_stored(source, ref.sha256, b"x" * 4000 if damage == "same size" else b"short")
    with pytest.raises(ChecksumMismatch):
        target.copy_from(source, ref)
    assert not target.exists(ref.sha256)
    assert stored_objects(target) == []


@pytest.mark.parametrize(("source_kind", "target_kind"), PAIRS)
def test_corrupt_bytes_in_the_target_are_deleted_when_no_good_copy_can_replace_them(
    make_store: Callable[[str], ArtifactStore],
    artifact: Callable[..., Path],
    source_kind: str,
    target_kind: str,
) -> None:
    source, target = make_store(source_kind), make_store(target_kind)
    ref = source.put_file(artifact(4000))
    target.copy_from(source, ref)
    overwrite_stored(target, ref.sha256, b"y" * 4000)
    overwrite_stored(source, ref.sha256, b"x" * 4000)
    with pytest.raises(ChecksumMismatch):
        target.copy_from(source, ref)
    assert stored_objects(target) == []
