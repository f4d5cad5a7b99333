"""Artifacts in a local folder (the embedded default)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from registry.artifacts.base import CHUNK, ArtifactStore, content_key
from registry.errors import ArtifactError, ChecksumMismatch, InvalidInput
from registry.models import ArtifactRef


class LocalArtifactStore(ArtifactStore):
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def _path(self, sha256: str) -> Path:
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
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with source.open("rb") as src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            final = self._path(sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)  # same bytes, same name: a concurrent writer is harmless
        except OSError as exc:
            raise ArtifactError(f"could not store {source}: {exc}") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return ArtifactRef(uri=final.as_uri(), sha256=sha256, size=size, format=format)

    def get_file(self, ref: ArtifactRef, dest: Path) -> Path:
        source = self._path(ref.sha256)
        if not source.is_file():
            raise ArtifactError(f"artifact {ref.sha256[:12]} is missing from {self.root}")
        digest = hashlib.sha256()
        size = 0
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        with source.open("rb") as src, tmp.open("wb") as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if size != ref.size or digest.hexdigest() != ref.sha256:
            tmp.unlink()
            raise ChecksumMismatch(
                f"artifact {ref.sha256[:12]} is corrupt: got {size} bytes with sha256 "
                f"{digest.hexdigest()[:12]}, expected {ref.size} bytes with {ref.sha256[:12]}"
            )
        os.replace(tmp, dest)
        return dest
