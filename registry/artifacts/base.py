"""The artifact store interface: content-addressed bytes, verified on the way out."""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from pathlib import Path

from registry.errors import InvalidInput
from registry.models import ArtifactRef

CHUNK = 1024 * 1024
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def content_key(sha256: str) -> str:
    """The key bytes with this digest live under: ``sha256/ab/abcdef…``."""
    if not _SHA256_RE.match(sha256):
        raise InvalidInput(f"invalid sha256 {sha256!r}")
    return f"sha256/{sha256[:2]}/{sha256}"


def file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class ArtifactStore(ABC):
    """Stores bytes under keys derived from their sha256.

    ``put_file`` streams a file in (hashing as it reads, never holding it in
    memory) and returns its reference; ``get_file`` writes the bytes to a local
    path and raises ``ChecksumMismatch`` unless size and sha256 match the
    reference. Keys that would escape the store's root raise ``InvalidInput``.
    """

    @abstractmethod
    def put_file(self, path: Path, *, format: str = "skops") -> ArtifactRef: ...

    @abstractmethod
    def get_file(self, ref: ArtifactRef, dest: Path) -> Path: ...

    @abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    def uri_for(self, sha256: str) -> str: ...
