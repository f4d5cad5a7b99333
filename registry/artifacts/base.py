"""The artifact store interface: content-addressed bytes, verified on the way out.

Also owns the content key, the only key shape a store accepts. Hashing and the
verified write to a local disk live in ``registry.artifacts.files``. A reference
whose format is ``BUNDLE_FORMAT`` names a bundle (a manifest of files, see
``registry.artifacts.bundle``): ``verify`` and ``copy_from`` handle it whole.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, suppress
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from registry.artifacts.files import (
    CHUNK,
    Readable,
    check_digest,
    file_digest,
    stream_digest,
    write_verified,
)
from registry.errors import ArtifactError, ChecksumMismatch, InvalidInput
from registry.models import ArtifactRef

# Re-exported: modules import these from here.
__all__ = [
    "BUNDLE_FORMAT",
    "CHUNK",
    "ArtifactStore",
    "Readable",
    "StoredObject",
    "check_digest",
    "content_key",
    "file_digest",
    "sha256_of_key",
    "stream_digest",
    "write_verified",
]

# The format of a bundle's reference (its manifest). Here rather than in bundle.py so
# that verify and copy_from can tell a bundle without importing it at start-up.
BUNDLE_FORMAT = "bundle"

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_KEY_RE = re.compile(r"^sha256/([0-9a-f]{2})/([0-9a-f]{64})$")


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


class StoredObject(NamedTuple):
    """One object under a content key, as a listing of the store shows it."""

    sha256: str
    size: int
    last_modified: datetime  # UTC: when the bytes under the key were last written


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
        """Store a local file under its digest and return its reference.

        The file is hashed first, and the stored bytes are checked against that digest
        before they are committed (a file that changes meanwhile raises
        ``ChecksumMismatch``). Storing the same bytes twice yields the same key (one
        object). The file is never held in memory whole.
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
        """Write ``stream`` under ``ref``'s key, committing only if size and sha256 match.

        Nothing unverified is ever left under the key, and no temporary object is left
        behind, whether the stream is short, long, tampered with or fails mid-way.
        """

    @abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove the object stored under this digest's key; a missing one is not an error.

        Only for bytes known to be wrong (a copy that failed its read-back): content
        keys are shared, so deleting good bytes removes them for every version.
        """

    @abstractmethod
    def iter_content(self) -> Iterator[StoredObject]:
        """Every object stored under a content key, in no particular order.

        Only keys ``sha256_of_key`` accepts are listed: temporary uploads, backups and
        anything else under the store's root are never seen, so a sweep over this
        listing (``modelreg gc``) cannot touch them. The listing is not a snapshot:
        objects written or deleted meanwhile may or may not appear.
        """

    def local_path(self, sha256: str) -> Path | None:
        """The file that holds this digest's object on this machine, or None if the store
        is not a local folder. The file may be missing or corrupt: callers check it."""
        return None

    def get_file(self, ref: ArtifactRef, dest: Path) -> Path:
        """Download to ``dest`` through a temporary file next to it.

        Size and sha256 are checked before the rename, and the file and its folder are
        fsynced: on ``ChecksumMismatch`` (or any other error) nothing is left at
        ``dest`` (an earlier file there is kept) and no temporary file remains.
        """
        with self.open_stored(ref.sha256) as stream:
            return write_verified(stream, ref, Path(dest), self.uri_for(ref.sha256))

    def verify(self, ref: ArtifactRef) -> None:
        """Re-read the stored bytes and check size and sha256 against ``ref``.

        For a bundle (``ref.format == BUNDLE_FORMAT``): its manifest, then every file
        the manifest lists.
        """
        if ref.format == BUNDLE_FORMAT:
            from registry.artifacts.bundle import verify_bundle

            verify_bundle(self, ref)
            return
        with self.open_stored(ref.sha256) as stream:
            sha256, size = stream_digest(stream)
        check_digest(ref, sha256, size, self.uri_for(ref.sha256))

    def copy_from(self, source: ArtifactStore, ref: ArtifactRef) -> ArtifactRef:
        """Put ``ref``'s bytes from ``source`` into this store; return this store's reference.

        Returns only once the bytes here are proven: read back from this store, or
        hashed from its own disk before they were renamed into place. Idempotent: bytes
        already here that verify are left alone, corrupt ones are replaced. The store
        picks the cheapest path the pair allows (``_copy_in``): a kernel copy between
        local folders, an upload from a local file, a server-side copy on one S3
        endpoint, a stream through this process otherwise; memory stays bounded.

        On ``ChecksumMismatch`` no corrupt bytes stay under the key: a copy that landed
        and then failed its read-back (a server-side copy of a corrupt source) is deleted.

        A bundle (``ref.format == BUNDLE_FORMAT``) is copied file by file, each through
        this same verified path, and its manifest last: a manifest present in a store
        always has all its files there, and a bundle with a tampered or missing file
        leaves no manifest behind.
        """
        if ref.format == BUNDLE_FORMAT:
            from registry.artifacts.bundle import copy_bundle

            return copy_bundle(self, source, ref)
        placed = ref.model_copy(update={"uri": self.uri_for(ref.sha256)})
        if self.exists(ref.sha256) and _verifies(self, placed):
            return placed
        try:
            self._copy_in(source, placed)
        except ChecksumMismatch:
            self._discard_corrupt(placed)
            raise
        return placed

    def _copy_in(self, source: ArtifactStore, ref: ArtifactRef) -> None:
        """Copy ``ref`` from ``source`` into this store and prove it (see ``copy_from``).

        The default streams through ``put_verified``; a store overrides it where a
        cheaper path exists or where ``put_verified`` does not read the bytes back.
        """
        with source.open_stored(ref.sha256) as stream:
            self.put_verified(stream, ref)

    def _discard_corrupt(self, ref: ArtifactRef) -> None:
        # Bytes that verify are kept: a concurrent copy of the same content may have
        # put them there. Best effort: the mismatch is the error worth reporting.
        with suppress(ArtifactError):
            if self.exists(ref.sha256) and not _verifies(self, ref):
                self.delete(ref.sha256)


def _verifies(store: ArtifactStore, ref: ArtifactRef) -> bool:
    try:
        store.verify(ref)
    except ChecksumMismatch:
        return False
    return True
