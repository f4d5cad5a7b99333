"""Replication: copy a version's bytes into every region, prove each copy, record it.

A replica counts as verified only after its bytes were read back from the region's
store and matched the registered size and sha256 (never an ETag). Each region is
copied in its own thread; one region's failure never stops the others, and ends as
a ``failed`` replica row with the error. Re-running is cheap: a region whose row is
verified and whose object still exists is not copied again (``verify_replicas``
re-reads the bytes when that is wanted).

Copying is the target store's ``ArtifactStore.copy_from``: it picks the copy path
(a kernel copy between local folders, an upload from a local file, a server-side
copy on one S3 endpoint, a stream otherwise), reads the copy back, and deletes a
copy that fails the read-back, so no corrupt bytes stay under a content key. This
module knows no concrete store. Memory stays bounded whatever the artifact size.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from registry.artifacts import ArtifactStore
from registry.config import Settings
from registry.errors import (
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
    # copy_from is idempotent (bytes that already verify are not copied again) and
    # returns only once the region's copy has been read back.
    error = _attempt(lambda: target.copy_from(source, ref), retries, backoff)
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
    action: Callable[[], object],
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
