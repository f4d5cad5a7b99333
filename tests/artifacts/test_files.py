"""write_verified, the one way bytes land on a local disk: kernel copy or chunks,
hashed as read back, renamed into place only if they match."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import pytest

from registry.artifacts.files import write_verified
from registry.errors import ArtifactError, ChecksumMismatch
from registry.models import ArtifactRef

DATA = os.urandom(3 * 1024 * 1024 + 11)


def _ref(data: bytes) -> ArtifactRef:
    return ArtifactRef(uri="file:///x", sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def test_a_file_is_copied_from_where_it_stands(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"header" + DATA)
    dest = tmp_path / "out" / "model.bin"
    with source.open("rb") as stream:
        stream.read(6)
        write_verified(stream, _ref(DATA), dest, "test")
    assert dest.read_bytes() == DATA
    assert sorted(p.name for p in dest.parent.iterdir()) == ["model.bin"]


def test_a_pipe_is_copied_in_chunks(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as out:
            out.write(DATA)

    writer = threading.Thread(target=feed)
    writer.start()
    with os.fdopen(read_fd, "rb") as stream:
        write_verified(stream, _ref(DATA), tmp_path / "model.bin", "test")
    writer.join()
    assert (tmp_path / "model.bin").read_bytes() == DATA


def test_a_mismatch_keeps_the_folder_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"previous")
    with pytest.raises(ChecksumMismatch, match="in test is corrupt"):
        write_verified(io.BytesIO(DATA[:-1]), _ref(DATA), tmp_path / "model.bin", "test")
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]
    assert (tmp_path / "model.bin").read_bytes() == b"previous"


def test_an_unwritable_destination_is_an_artifact_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ArtifactError, match="could not write") as caught:
        write_verified(io.BytesIO(DATA), _ref(DATA), tmp_path / "file" / "model.bin", "test")
    assert isinstance(caught.value.__cause__, OSError)
