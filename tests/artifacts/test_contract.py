"""The artifact-store contract, on a local folder and on S3 (moto server over HTTP)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from registry.artifacts import ArtifactStore, file_digest
from registry.errors import ArtifactError, ArtifactUnavailable, ChecksumMismatch, InvalidInput
from registry.models import ArtifactRef

from .support import MIB, overwrite_stored, stored_objects


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_round_trip_keeps_size_and_sha256(
    store: ArtifactStore, artifact: Callable[..., Path], tmp_path: Path
) -> None:
    source = artifact(100_000)
    ref = store.put_file(source, format="skops")
    assert (ref.sha256, ref.size) == file_digest(source)
    assert ref.uri == store.uri_for(ref.sha256)
    out = store.get_file(ref, tmp_path / "out" / "model.skops")
    assert out.read_bytes() == source.read_bytes()
    assert _leftovers(out.parent) == ["model.skops"]


def test_large_file_round_trips(
    store: ArtifactStore, artifact: Callable[..., Path], tmp_path: Path
) -> None:
    source = artifact(12 * MIB + 3)
    ref = store.put_file(source)
    store.verify(ref)
    out = store.get_file(ref, tmp_path / "big.bin")
    assert file_digest(out) == (ref.sha256, 12 * MIB + 3)


def test_empty_file_round_trips(
    store: ArtifactStore, artifact: Callable[..., Path], tmp_path: Path
) -> None:
    ref = store.put_file(artifact(0))
    assert ref.sha256 == hashlib.sha256(b"").hexdigest()
    assert store.get_file(ref, tmp_path / "empty").read_bytes() == b""


def test_same_bytes_are_stored_once_under_one_key(
    store: ArtifactStore, artifact: Callable[..., Path]
) -> None:
    first = store.put_file(artifact(5000, name="a.skops"))
    second = store.put_file(artifact(5000, name="b.skops"))
    assert first == second
    assert first.uri.endswith(f"sha256/{first.sha256[:2]}/{first.sha256}")
    assert len(stored_objects(store)) == 1


def test_exists_reports_stored_digests(store: ArtifactStore, artifact: Callable[..., Path]) -> None:
    ref = store.put_file(artifact(10))
    assert store.exists(ref.sha256)
    assert not store.exists("0" * 64)


@pytest.mark.parametrize("damage", ["tampered", "truncated", "extended"])
def test_damaged_bytes_fail_verify_and_get_file(
    store: ArtifactStore, artifact: Callable[..., Path], tmp_path: Path, damage: str
) -> None:
    source = artifact(200_000)
    ref = store.put_file(source)
    data = source.read_bytes()
    damaged = {
        "tampered": data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:],
        "truncated": data[: len(data) // 2],
        "extended": data + b"\0",
    }[damage]
    overwrite_stored(store, ref.sha256, damaged)
    with pytest.raises(ChecksumMismatch):
        store.verify(ref)
    dest = tmp_path / "out" / "model.skops"
    with pytest.raises(ChecksumMismatch):
        store.get_file(ref, dest)
    assert _leftovers(dest.parent) == []


def test_get_file_keeps_an_existing_dest_on_mismatch(
    store: ArtifactStore, artifact: Callable[..., Path], tmp_path: Path
) -> None:
    ref = store.put_file(artifact(3000))
    overwrite_stored(store, ref.sha256, b"garbage")
    dest = tmp_path / "model.skops"
    dest.write_bytes(b"previous")
    with pytest.raises(ChecksumMismatch):
        store.get_file(ref, dest)
    assert dest.read_bytes() == b"previous"


def test_missing_object_is_an_artifact_error_not_a_mismatch(
    store: ArtifactStore, tmp_path: Path
) -> None:
    ref = ArtifactRef(uri="s3://elsewhere/x", sha256="ab" * 32, size=3)
    for call in (lambda: store.verify(ref), lambda: store.get_file(ref, tmp_path / "m")):
        with pytest.raises(ArtifactError, match="missing") as caught:
            call()
        assert not isinstance(caught.value, ChecksumMismatch)
    assert not (tmp_path / "m").exists()


# ---------------------------------------------------------------- verified writes


class _FailingStream:
    """Hands out ``good`` bytes, then fails the way a dropped connection does."""

    def __init__(self, good: bytes) -> None:
        self._good = io.BytesIO(good)

    def read(self, size: int = -1, /) -> bytes:
        if chunk := self._good.read(size):
            return chunk
        raise ArtifactUnavailable("connection dropped mid-stream")


def _open(kind: str, data: bytes, folder: Path) -> BinaryIO:
    """A stream of ``data``: a real file (kernel copy into a local store) or memory."""
    if kind == "bytes":
        return io.BytesIO(data)
    path = folder / "stream.bin"
    path.write_bytes(data)
    return path.open("rb")


def _damaged(data: bytes, damage: str) -> bytes:
    return {
        "intact": data,
        "tampered": data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:],
        "truncated": data[: len(data) // 2],
        "extended": data + b"\0",
    }[damage]


@pytest.mark.parametrize("kind", ["file", "bytes"])
def test_put_verified_commits_a_matching_stream_under_its_key(
    store: ArtifactStore, artifact: Callable[..., Path], tmp_path: Path, kind: str
) -> None:
    data = artifact(3 * MIB + 5).read_bytes()
    ref = ArtifactRef(
        uri="file:///elsewhere", sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )
    with _open(kind, data, tmp_path) as stream:
        placed = store.put_verified(stream, ref)
    assert placed.uri == store.uri_for(ref.sha256)
    store.verify(placed)
    assert len(stored_objects(store)) == 1


@pytest.mark.parametrize("damage", ["tampered", "truncated", "extended"])
@pytest.mark.parametrize("kind", ["file", "bytes"])
def test_put_verified_of_a_damaged_stream_leaves_nothing_not_even_a_temporary(
    store: ArtifactStore, artifact: Callable[..., Path], tmp_path: Path, kind: str, damage: str
) -> None:
    data = artifact(200_000).read_bytes()
    ref = ArtifactRef(
        uri="file:///elsewhere", sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )
    with _open(kind, _damaged(data, damage), tmp_path) as stream, pytest.raises(ChecksumMismatch):
        store.put_verified(stream, ref)
    assert not store.exists(ref.sha256)
    assert stored_objects(store) == []


def test_put_verified_of_a_stream_that_fails_midway_leaves_nothing(
    store: ArtifactStore, artifact: Callable[..., Path]
) -> None:
    data = artifact(200_000).read_bytes()
    ref = ArtifactRef(
        uri="file:///elsewhere", sha256=hashlib.sha256(data).hexdigest(), size=len(data)
    )
    with pytest.raises(ArtifactUnavailable):
        store.put_verified(_FailingStream(data[:100_000]), ref)
    assert stored_objects(store) == []


def test_get_file_creates_missing_folders_and_leaves_only_the_file(
    store: ArtifactStore, artifact: Callable[..., Path], tmp_path: Path
) -> None:
    source = artifact(6 * MIB + 1)
    ref = store.put_file(source)
    dest = tmp_path / "a" / "b" / "model.skops"
    assert store.get_file(ref, dest) == dest
    assert dest.read_bytes() == source.read_bytes()
    assert _leftovers(dest.parent) == ["model.skops"]


def test_get_file_replaces_an_existing_dest_when_the_bytes_verify(
    store: ArtifactStore, artifact: Callable[..., Path], tmp_path: Path
) -> None:
    source = artifact(3000)
    ref = store.put_file(source)
    dest = tmp_path / "model.skops"
    dest.write_bytes(b"previous")
    store.get_file(ref, dest)
    assert dest.read_bytes() == source.read_bytes()


# ---------------------------------------------------------------- delete


def test_delete_removes_the_object_and_nothing_else(
    store: ArtifactStore, artifact: Callable[..., Path], tmp_path: Path
) -> None:
    gone = store.put_file(artifact(1000, seed=1))
    kept = store.put_file(artifact(1000, seed=2))
    store.delete(gone.sha256)
    assert not store.exists(gone.sha256)
    with pytest.raises(ArtifactError, match="missing"):
        store.verify(gone)
    with pytest.raises(ArtifactError, match="missing"):
        store.get_file(gone, tmp_path / "gone")
    store.verify(kept)
    assert len(stored_objects(store)) == 1


def test_deleting_a_missing_object_is_not_an_error(store: ArtifactStore) -> None:
    store.delete("ab" * 32)
    assert not store.exists("ab" * 32)


@pytest.mark.parametrize("bad", ["../" + "a" * 62, "AB" * 32, "", "ab" * 31])
def test_delete_refuses_what_is_not_a_digest(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(InvalidInput):
        store.delete(bad)
