"""The artifact-store contract, on a local folder and on S3 (moto server over HTTP)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.artifacts import ArtifactStore, file_digest
from registry.errors import ArtifactError, ChecksumMismatch
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
