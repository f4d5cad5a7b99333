"""Artifacts in a local folder (the embedded default)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from registry.artifacts.base import (
    ArtifactStore,
    Readable,
    check_digest,
    content_key,
    copy_hashing,
)
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

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def put_file(self, path: Path, *, format: str = "skops") -> ArtifactRef:
        source = Path(path)
        if not source.is_file():
            raise InvalidInput(f"artifact file not found: {source}")
        try:
            with source.open("rb") as src:
                sha256, size = self._ingest(src, expected=None)
        except OSError as exc:
            raise ArtifactError(f"could not store {source}: {exc}") from exc
        return ArtifactRef(uri=self.uri_for(sha256), sha256=sha256, size=size, format=format)

    def put_verified(self, stream: Readable, ref: ArtifactRef) -> ArtifactRef:
        self._path(ref.sha256)  # refuse a bad key before writing anything
        try:
            self._ingest(stream, expected=ref)
        except OSError as exc:
            raise ArtifactError(f"could not store {ref.sha256[:12]} in {self.root}: {exc}") from exc
        return ref.model_copy(update={"uri": self.uri_for(ref.sha256)})

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

    def _ingest(self, stream: Readable, expected: ArtifactRef | None) -> tuple[str, int]:
        """Copy into a temp file in the root, then rename to the content key if it checks out."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                sha256, size = copy_hashing(stream, out)
                out.flush()
                os.fsync(out.fileno())
            if expected is not None:
                check_digest(expected, sha256, size, f"a copy into {self.root}")
            final = self._path(sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)  # same bytes, same name: a concurrent writer is harmless
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return sha256, size
