"""The artifact store interface: content-addressed bytes, verified on the way out.

Also owns the helpers every store shares: the content key (the only key shape a
store accepts), streaming sha256, and the verified download into a local path.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO, Protocol

from registry.errors import ArtifactError, ChecksumMismatch, InvalidInput
from registry.models import ArtifactRef

CHUNK = 1024 * 1024
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_KEY_RE = re.compile(r"^sha256/([0-9a-f]{2})/([0-9a-f]{64})$")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def content_key(sha256: str) -> str:
    """The key bytes with this digest live under: ``sha256/ab/abcdef…``."""
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
        raise InvalidInput(f"invalid sha256 {sha256!r}")
    return f"sha256/{sha256[:2]}/{sha256}"


def sha256_of_key(key: str) -> str:
    """The digest a content key names; any other key (``..``, absolute, …) is refused."""
    match = _KEY_RE.match(key) if isinstance(key, str) else None
    if match is None or match.group(1) != match.group(2)[:2]:
        raise InvalidInput(f"not a content key: {key!r}")
    return match.group(2)


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


def copy_hashing(stream: Readable, out: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        out.write(chunk)
    return digest.hexdigest(), size


def check_digest(ref: ArtifactRef, sha256: str, size: int, where: str) -> None:
    if size != ref.size or sha256 != ref.sha256:
        raise ChecksumMismatch(
            f"artifact {ref.sha256[:12]} in {where} is corrupt: got {size} bytes with sha256 "
            f"{sha256[:12]}, expected {ref.size} bytes with {ref.sha256[:12]}"
        )


def write_verified(stream: Readable, ref: ArtifactRef, dest: Path, where: str) -> Path:
    """Write ``stream`` next to ``dest``, and rename it into place only if it matches ``ref``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            sha256, size = copy_hashing(stream, out)
        check_digest(ref, sha256, size, where)
        os.replace(tmp, dest)
    except OSError as exc:
        raise ArtifactError(f"could not write artifact {ref.sha256[:12]} to {dest}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


class ArtifactStore(ABC):
    """Stores bytes under keys derived from their sha256 (``content_key``).

    Every read that hands bytes out checks them against an ``ArtifactRef`` (size
    and sha256) first. A sha256 or key that is not a plain content key, or that
    would resolve outside the store's root, raises ``InvalidInput``. A missing
    object raises ``ArtifactError``; bytes that do not match raise
    ``ChecksumMismatch``; an unreachable endpoint raises ``ArtifactUnavailable``.
    Third-party errors never escape.
    """

    @abstractmethod
    def put_file(self, path: Path, *, format: str = "skops") -> ArtifactRef:
        """Stream a local file in, hashing while reading, and return its reference.

        Storing the same bytes twice yields the same key (one object). The file is
        never held in memory whole.
        """

    @abstractmethod
    def exists(self, sha256: str) -> bool:
        """Whether an object is stored under this digest's key (its bytes are not checked)."""

    @abstractmethod
    def uri_for(self, sha256: str) -> str:
        """The URI of the object with this digest (``file://…`` or ``s3://…``)."""

    @abstractmethod
    def open_stored(self, sha256: str) -> AbstractContextManager[Readable]:
        """Raw, unverified stored bytes; prefer ``get_file`` and ``verify``."""

    @abstractmethod
    def put_verified(self, stream: Readable, ref: ArtifactRef) -> ArtifactRef:
        """Write ``stream`` under ``ref``'s key, committing only if size and sha256 match."""

    def get_file(self, ref: ArtifactRef, dest: Path) -> Path:
        """Download to ``dest`` through a temporary file next to it.

        Size and sha256 are checked before the rename: on ``ChecksumMismatch`` (or
        any other error) nothing is left at ``dest``.
        """
        with self.open_stored(ref.sha256) as stream:
            return write_verified(stream, ref, Path(dest), self.uri_for(ref.sha256))

    def verify(self, ref: ArtifactRef) -> None:
        """Re-read the stored bytes and check size and sha256 against ``ref``."""
        with self.open_stored(ref.sha256) as stream:
            sha256, size = stream_digest(stream)
        check_digest(ref, sha256, size, self.uri_for(ref.sha256))

    def copy_to(self, ref: ArtifactRef, target: ArtifactStore) -> ArtifactRef:
        """Put these bytes into ``target`` and return the target's reference.

        Idempotent: if ``target`` already holds bytes that verify, nothing is
        copied. Otherwise a server-side copy is used when both stores share an
        S3 endpoint (its size is checked; call ``target.verify`` to read it back),
        and a stream otherwise (hashed on the way in, committed only if it
        matches). Corrupt bytes in ``target`` are replaced.
        """
        target_ref = ref.model_copy(update={"uri": target.uri_for(ref.sha256)})
        if target.exists(ref.sha256) and _verifies(target, target_ref):
            return target_ref
        if target.copy_server_side(self, ref):
            return target_ref
        with self.open_stored(ref.sha256) as stream:
            return target.put_verified(stream, target_ref)

    def copy_server_side(self, source: ArtifactStore, ref: ArtifactRef) -> bool:
        """Copy ``ref`` from ``source`` without streaming through this process, if possible.

        Returns False when this pair of stores cannot do that (the default).
        """
        return False


def _verifies(store: ArtifactStore, ref: ArtifactRef) -> bool:
    try:
        store.verify(ref)
    except ChecksumMismatch:
        return False
    return True
