"""Artifacts in a local folder (the embedded default).

Every write lands through ``write_verified``: a temporary file beside the content
key, hashed as read back from disk, fsynced and renamed. A copy from another local
folder is a kernel copy (``open_stored`` hands out a real file).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from registry.artifacts.base import (
    ArtifactStore,
    Readable,
    StoredObject,
    content_key,
    sha256_of_key,
)
from registry.artifacts.files import file_digest, remove_file, write_verified
from registry.errors import ArtifactError, InvalidInput
from registry.models import ArtifactRef


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    def _path(self, sha256: str) -> Path:
        # resolve() follows symlinks, so a link inside the root that points outside is caught.
        path = (self.root / content_key(sha256)).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidInput(f"artifact key escapes the store root: {sha256!r}")
        return path

    def uri_for(self, sha256: str) -> str:
        return self._path(sha256).as_uri()

    def local_path(self, sha256: str) -> Path:
        return self._path(sha256)

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def put_file(self, path: Path, *, format: str = "skops") -> ArtifactRef:
        # Hash first so the key is known up front; the copy is then checked against it.
        source = Path(path)
        if not source.is_file():
            raise InvalidInput(f"artifact file not found: {source}")
        try:
            sha256, size = file_digest(source)
            ref = ArtifactRef(uri=self.uri_for(sha256), sha256=sha256, size=size, format=format)
            with source.open("rb") as stream:
                write_verified(stream, ref, self._path(sha256), f"a copy of {source}")
        except OSError as exc:
            raise ArtifactError(f"could not store {source}: {exc}") from exc
        return ref

    def put_verified(self, stream: Readable, ref: ArtifactRef) -> ArtifactRef:
        final = self._path(ref.sha256)  # refuse a bad key before writing anything
        # Same bytes, same name: a concurrent writer of this key is harmless.
        write_verified(stream, ref, final, f"a copy into {self.root}")
        return ref.model_copy(update={"uri": final.as_uri()})

    def delete(self, sha256: str) -> None:
        remove_file(self._path(sha256), f"artifact {sha256[:12]} from {self.root}")

    def iter_content(self) -> Iterator[StoredObject]:
        # Only regular files whose path is a content key: a temporary file beside a key
        # (``.<hex>.….part``), a symlink or a folder is never listed.
        for shard in _entries(self.root / "sha256"):
            if not shard.is_dir(follow_symlinks=False):
                continue
            for entry in _entries(Path(shard.path)):
                stored = _stored(shard.name, entry)
                if stored is not None:
                    yield stored

    @contextmanager
    def open_stored(self, sha256: str) -> Iterator[BinaryIO]:
        path = self._path(sha256)
        try:
            handle = path.open("rb")
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact {sha256[:12]} is missing from {self.root}") from exc
        except OSError as exc:
            raise ArtifactError(f"could not read artifact {sha256[:12]}: {exc}") from exc
        with handle:
            yield handle


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as found:
            return list(found)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ArtifactError(f"could not list {folder}: {exc}") from exc


def _stored(shard: str, entry: os.DirEntry[str]) -> StoredObject | None:
    try:
        sha256 = sha256_of_key(f"sha256/{shard}/{entry.name}")
    except InvalidInput:
        return None
    try:
        if not entry.is_file(follow_symlinks=False):
            return None
        info = entry.stat(follow_symlinks=False)
    except FileNotFoundError:  # deleted while listing
        return None
    except OSError as exc:
        raise ArtifactError(f"could not read {entry.path}: {exc}") from exc
    return StoredObject(sha256, info.st_size, datetime.fromtimestamp(info.st_mtime, UTC))
