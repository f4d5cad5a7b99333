"""Bytes on a local disk: streaming sha256, the size-and-digest check, and the one
verified write every local landing goes through (store writes, downloads, copies).

``write_verified`` fills a temporary file beside the destination (a kernel copy when
the source is a regular file, 1 MiB chunks otherwise), reads that file back to hash
it, and only if size and sha256 match fsyncs it, renames it into place and fsyncs
the folder. On any failure the temporary file is removed and the destination is
left as it was.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO, Protocol

from registry.errors import ArtifactError, ChecksumMismatch
from registry.models import ArtifactRef

CHUNK = 1024 * 1024
_SENDFILE_BLOCK = 64 * CHUNK


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def file_digest(path: Path) -> tuple[str, int]:
    with Path(path).open("rb") as handle:
        return stream_digest(handle)


def stream_digest(stream: Readable) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def check_digest(ref: ArtifactRef, sha256: str, size: int, where: str) -> None:
    if size != ref.size or sha256 != ref.sha256:
        raise ChecksumMismatch(
            f"artifact {ref.sha256[:12]} in {where} is corrupt: got {size} bytes with sha256 "
            f"{sha256[:12]}, expected {ref.size} bytes with {ref.sha256[:12]}"
        )


def write_verified(source: Readable, ref: ArtifactRef, dest: Path, where: str) -> Path:
    """Land ``source`` at ``dest`` atomically and durably, only if it matches ``ref``.

    ``where`` names the destination in a ``ChecksumMismatch``. I/O errors raise
    ``ArtifactError``; errors raised by ``source`` itself pass through unchanged.
    """
    dest = Path(dest)
    try:
        _make_dirs(dest.parent)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as exc:
        raise ArtifactError(f"could not write artifact {ref.sha256[:12]} to {dest}: {exc}") from exc
    try:
        with os.fdopen(fd, "w+b") as out:
            _fill(source, out)
            out.flush()
            out.seek(0)
            # Hash what the disk holds, not what was sent: this is the read-back.
            sha256, size = stream_digest(out)
            check_digest(ref, sha256, size, where)
            os.fsync(out.fileno())
        os.replace(tmp, dest)
        # Verified bytes are in place from here on; a failing folder fsync is still an error.
        _fsync_dir(dest.parent)
    except OSError as exc:
        raise ArtifactError(f"could not write artifact {ref.sha256[:12]} to {dest}: {exc}") from exc
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest


def remove_file(path: Path, what: str) -> None:
    """Delete ``path`` durably (the folder is fsynced); a missing file is not an error."""
    try:
        path.unlink(missing_ok=True)
        if path.parent.exists():
            _fsync_dir(path.parent)
    except OSError as exc:
        raise ArtifactError(f"could not delete {what}: {exc}") from exc


def _fill(source: Readable, out: BinaryIO) -> None:
    """Kernel copy (``sendfile``) from a regular file, without the bytes passing through
    Python; chunks from anything else, or where the platform cannot do that."""
    start = _file_offset(source)
    if start is not None:
        offset = start
        try:
            while sent := os.sendfile(out.fileno(), _fileno(source), offset, _SENDFILE_BLOCK):
                offset += sent
            return
        except OSError:
            if offset != start:  # failed mid-way: a real I/O error, not a missing capability
                raise
    while chunk := source.read(CHUNK):
        out.write(chunk)


def _file_offset(source: Readable) -> int | None:
    """Where a file-backed ``source`` stands (sendfile reads from there), or None."""
    if not isinstance(source, io.BufferedReader | io.FileIO):
        return None
    try:
        return source.tell()
    except OSError:
        return None


def _fileno(source: Readable) -> int:
    assert isinstance(source, io.BufferedReader | io.FileIO)
    return source.fileno()


def _make_dirs(folder: Path) -> None:
    """``mkdir -p``, fsyncing the parent of every folder it creates, so a renamed file's
    path survives a crash as well as its bytes."""
    missing: list[Path] = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
