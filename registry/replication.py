"""Replication: copy a version's bytes into every region, prove each copy, record it.

A replica counts as verified only after its bytes were read back from the region's
store and matched the registered size and sha256 (never an ETag). Each region is
copied in its own thread; one region's failure never stops the others, and ends as
a ``failed`` replica row with the error. Re-running is cheap: a region whose row is
verified and whose object still exists is not copied again (``verify_replicas``
re-reads the bytes when that is wanted).

Copy paths: local folder to local folder goes through the kernel (``sendfile``)
into a temporary file that is then hashed and renamed into place; a local file to
S3 is uploaded from its path (parts read as they are sent); S3 to S3 on one
endpoint is a server-side copy; anything else streams through this process
(``ArtifactStore.copy_to``). Memory stays bounded whatever the artifact size.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import urlsplit
from urllib.request import url2pathname

from registry.artifacts import ArtifactStore, LocalArtifactStore
from registry.artifacts.base import CHUNK, check_digest, file_digest, stream_digest
from registry.config import Settings
from registry.errors import (
    ArtifactError,
    ArtifactUnavailable,
    ChecksumMismatch,
    InvalidInput,
    RegistryError,
)
from registry.models import ArtifactRef
from registry.release_models import Replica, ReplicaState, check_region, check_regions
from registry.store.base import RegistryStore

# Worth another attempt: the endpoint may come back, and a copy that read back wrong
# is copied again (bytes damaged in flight, or a concurrent writer).
TRANSIENT: tuple[type[Exception], ...] = (ArtifactUnavailable, ChecksumMismatch)
MAX_BACKOFF = 30.0
_SENDFILE_BLOCK = 64 * CHUNK

T = TypeVar("T")


def region_stores(
    settings: Settings, regions: Sequence[str] | None = None
) -> dict[str, ArtifactStore]:
    """The artifact store of each region (all configured regions unless ``regions``)."""
    names = check_regions(settings.regions if regions is None else regions)
    return {region: settings.region_store(region) for region in names}


def replicate(
    store: RegistryStore,
    source: ArtifactStore,
    targets: Mapping[str, ArtifactStore],
    name: str,
    version: int,
    *,
    retries: int = 3,
    backoff: float = 0.5,
) -> list[Replica]:
    """Copy version ``version`` of ``name`` from ``source`` into every target region, in
    parallel, and return each region's replica (sorted by region).

    Never raises for one region's failure: that region's replica is ``failed`` with
    the error. Raises only for bad input, an unknown version, or a registry that
    cannot record the outcome.
    """
    regions = sorted(check_regions(list(targets)))
    _check_retry(retries, backoff)
    store.get_version(name, version)  # NotFound before any copying starts
    return _per_region(
        regions,
        lambda region: replicate_one(
            store, source, region, targets[region], name, version, retries=retries, backoff=backoff
        ),
    )


def replicate_one(
    store: RegistryStore,
    source: ArtifactStore,
    region: str,
    target: ArtifactStore,
    name: str,
    version: int,
    *,
    retries: int = 3,
    backoff: float = 0.5,
) -> Replica:
    """Replicate into one region (what a per-region task calls); idempotent.

    Records ``pending``, then copies and reads back, retrying transient errors
    (``ArtifactUnavailable``, a copy that does not verify) up to ``retries`` more
    times with exponential backoff and jitter. Ends ``verified`` or ``failed``;
    artifact errors are recorded, not raised.
    """
    check_region(region)
    _check_retry(retries, backoff)
    ref = store.get_version(name, version).artifact
    uri = _uri(target, ref)
    current = _current_replica(store, name, version, region)
    if current is not None and _still_verified(current, ref, target):
        return current
    store.record_replica(name, version, region, ReplicaState.PENDING, uri=uri)
    error = _attempt(lambda: _copy_and_verify(source, target, ref), retries, backoff)
    if error is None:
        return store.record_replica(
            name, version, region, ReplicaState.VERIFIED, uri=uri, sha256=ref.sha256, size=ref.size
        )
    return store.record_replica(name, version, region, ReplicaState.FAILED, uri=uri, error=error)


def verify_replicas(
    store: RegistryStore,
    targets: Mapping[str, ArtifactStore],
    name: str,
    version: int,
    *,
    retries: int = 1,
    backoff: float = 0.5,
) -> list[Replica]:
    """Re-read every target region's copy and re-record its state (sorted by region):
    ``verified`` (with a new ``verified_at``) if size and sha256 match, ``failed`` if the
    bytes are corrupt, missing or cannot be read. Nothing is copied."""
    regions = sorted(check_regions(list(targets)))
    _check_retry(retries, backoff)
    ref = store.get_version(name, version).artifact

    def verify_one(region: str) -> Replica:
        target = targets[region]
        uri = _uri(target, ref)
        # Only an unreachable store is retried: reading the same bytes again cannot fix them.
        error = _attempt(
            lambda: target.verify(_at(ref, target)), retries, backoff, (ArtifactUnavailable,)
        )
        if error is None:
            return store.record_replica(
                name,
                version,
                region,
                ReplicaState.VERIFIED,
                uri=uri,
                sha256=ref.sha256,
                size=ref.size,
            )
        return store.record_replica(
            name, version, region, ReplicaState.FAILED, uri=uri, error=error
        )

    return _per_region(regions, verify_one)


# ---------------------------------------------------------------- internals


def _check_retry(retries: int, backoff: float) -> None:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise InvalidInput(f"retries must be a whole number >= 0, got {retries!r}")
    if not isinstance(backoff, int | float) or not 0 <= backoff <= MAX_BACKOFF:
        raise InvalidInput(f"backoff must be between 0 and {MAX_BACKOFF} seconds, got {backoff!r}")


def _per_region(regions: list[str], work: Callable[[str], T]) -> list[T]:
    """``work`` for each region in its own thread; results in region order. The first
    exception (a registry error: artifact errors are recorded, not raised) is re-raised
    once every region has finished."""
    with ThreadPoolExecutor(max_workers=len(regions), thread_name_prefix="replicate") as pool:
        futures = [pool.submit(work, region) for region in regions]
    return [future.result() for future in futures]


def _attempt(
    action: Callable[[], None],
    retries: int,
    backoff: float,
    transient: tuple[type[Exception], ...] = TRANSIENT,
) -> str | None:
    """Run ``action``, retrying ``transient`` errors; the last error as one line, or None."""
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        try:
            action()
        except transient as exc:
            if attempt == attempts:
                plural = "s" if attempts > 1 else ""
                return f"{exc} (gave up after {attempts} attempt{plural})"
            time.sleep(_delay(backoff, attempt))
        except (RegistryError, OSError) as exc:
            return str(exc)  # permanent: access denied, no such bucket, missing source …
        except Exception as exc:  # a region's failure must not take the others down
            return f"internal error ({type(exc).__name__}): {exc}"
        else:
            return None
    raise AssertionError("unreachable")  # pragma: no cover


def _delay(backoff: float, attempt: int) -> float:
    """Exponential backoff with jitter, so regions that failed together do not retry together."""
    base: float = min(MAX_BACKOFF, backoff * 2 ** (attempt - 1))
    return base * random.uniform(0.5, 1.5)


def _current_replica(store: RegistryStore, name: str, version: int, region: str) -> Replica | None:
    for replica in store.replicas(name, version):
        if replica.region == region:
            return replica
    return None


def _still_verified(replica: Replica, ref: ArtifactRef, target: ArtifactStore) -> bool:
    """A verified row for these bytes whose object is still there: nothing to copy."""
    if replica.state is not ReplicaState.VERIFIED:
        return False
    if (replica.sha256, replica.size) != (ref.sha256, ref.size):
        return False
    try:
        return target.exists(ref.sha256)
    except RegistryError:
        return False  # cannot tell: go through the copy, which retries and records


def _uri(target: ArtifactStore, ref: ArtifactRef) -> str | None:
    """Where the copy goes; None if the store refuses the key (the copy then fails and
    records why)."""
    try:
        return target.uri_for(ref.sha256)
    except RegistryError:
        return None


def _at(ref: ArtifactRef, store: ArtifactStore) -> ArtifactRef:
    return ref.model_copy(update={"uri": store.uri_for(ref.sha256)})


def _copy_and_verify(source: ArtifactStore, target: ArtifactStore, ref: ArtifactRef) -> None:
    if isinstance(source, LocalArtifactStore) and isinstance(target, LocalArtifactStore):
        _copy_local(source, target, ref)
        return
    if isinstance(source, LocalArtifactStore):
        _upload_local(source, target, ref)
        return
    # copy_to is idempotent (a target that already verifies is left alone), copies
    # server-side on a shared S3 endpoint and streams otherwise; then read it back.
    copied = source.copy_to(ref, target)
    target.verify(copied)


def _copy_local(source: LocalArtifactStore, target: LocalArtifactStore, ref: ArtifactRef) -> None:
    """Kernel copy into a temporary file beside the final one, hash that file (the read
    back), fsync, and rename it into place only if it matches."""
    if target.exists(ref.sha256):
        try:
            target.verify(_at(ref, target))
            return
        except ChecksumMismatch:
            pass  # corrupt bytes in the region: replace them
    dest = _local_path(target, ref.sha256)
    where = f"a copy into {target.root}"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as exc:
        raise ArtifactError(f"could not write {where}: {exc}") from exc
    try:
        with os.fdopen(fd, "w+b") as out:
            with source.open_stored(ref.sha256) as src:
                _kernel_copy(src, out)
            out.seek(0)
            sha256, size = stream_digest(out)
            check_digest(ref, sha256, size, where)
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except OSError as exc:
        raise ArtifactError(f"could not write {where}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _upload_local(source: LocalArtifactStore, target: ArtifactStore, ref: ArtifactRef) -> None:
    """A local file into a remote store: check the source, upload it from its path, read
    it back. From a path the upload goes straight to the content key, reading parts from
    the file as they are sent (no temporary key, a few MiB of memory per region)."""
    placed = _at(ref, target)
    if target.exists(ref.sha256):
        try:
            target.verify(placed)
            return
        except ChecksumMismatch:
            pass  # corrupt bytes in the region: replace them
    path = _local_path(source, ref.sha256)
    try:
        sha256, size = file_digest(path)
    except FileNotFoundError as exc:
        raise ArtifactError(f"artifact {ref.sha256[:12]} is missing from {source.root}") from exc
    except OSError as exc:
        raise ArtifactError(f"could not read artifact {ref.sha256[:12]}: {exc}") from exc
    check_digest(ref, sha256, size, source.uri_for(ref.sha256))
    target.put_file(path, format=ref.format)
    target.verify(placed)


def _local_path(store: LocalArtifactStore, sha256: str) -> Path:
    # uri_for refuses keys that would leave the store's root (symlinks included).
    return Path(url2pathname(urlsplit(store.uri_for(sha256)).path))


def _kernel_copy(src: BinaryIO, out: BinaryIO) -> None:
    """File to file without passing the bytes through Python (``sendfile``), or in chunks
    where the platform cannot do that."""
    offset = 0
    try:
        while sent := os.sendfile(out.fileno(), src.fileno(), offset, _SENDFILE_BLOCK):
            offset += sent
    except (AttributeError, OSError):
        if offset:  # failed mid-way: a real I/O error, not a missing capability
            raise
        while chunk := src.read(CHUNK):
            out.write(chunk)
