"""Swapping a new version in: downloaded from the resolver's region, verified, loaded
and checked before the swap. Whatever fails keeps the current model serving, marks
the resolver degraded with the reason, and is retried with backoff."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.models import ArtifactRef, Feature, Signature
from registry.resolver import Resolver, ResolverStatus, load_skops

from .conftest import REF, Registry
from .support import wait_for

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


def degraded(resolver: Resolver) -> ResolverStatus:
    [status] = wait_for(resolver.status, lambda s: s[0].degraded and s[0].swap_failures > 0)
    return status


def recovered_to(resolver: Resolver, version: int, *, timeout: float = 8) -> ResolverStatus:
    [status] = wait_for(
        resolver.status, lambda s: s[0].version == version and not s[0].degraded, timeout=timeout
    )
    return status


def test_bytes_missing_in_the_region_keep_the_old_model_until_they_arrive(
    fraud: Registry,
) -> None:
    resolver = fraud.resolver(ttl_s=3600)
    fraud.region_file(2).unlink()
    fraud.promote(2)
    status = degraded(resolver)
    assert (status.version, resolver.get(REF).version) == (1, 1)
    assert "keeping v1" in (status.reason or "") and "missing" in (status.reason or "")
    fraud.settings.region_store("eu-west").put_file(fraud.model_file(2))
    recovered_to(resolver, 2)
    assert resolver.get(REF).version == 2


@pytest.fixture
def stalled_region_file(fraud: Registry) -> Iterator[Path]:
    """v2's bytes in the region replaced by a FIFO that a writer holds open and never
    writes to: a download that starts and then stalls, as over a hung connection.
    Teardown closes the writer, so every stalled reader ends (at EOF)."""
    path = fraud.region_file(2)
    path.unlink()
    os.mkfifo(path)
    writer = os.open(path, os.O_RDWR | os.O_NONBLOCK)  # a FIFO opened RDWR never blocks
    yield path
    os.close(writer)


def test_a_download_past_its_budget_keeps_the_old_model_until_it_completes(
    fraud: Registry, stalled_region_file: Path
) -> None:
    resolver = fraud.resolver(ttl_s=3600, budget_s=0.3)
    fraud.promote(2)
    status = degraded(resolver)
    assert (status.version, resolver.get(REF).version) == (1, 1)
    assert "keeping v1" in (status.reason or "") and "0.3s" in (status.reason or "")
    # The bytes arrive: the good file takes the FIFO's name (new downloads read it).
    arriving = stalled_region_file.with_name("arriving.part")
    shutil.copyfile(fraud.model_file(2), arriving)
    os.replace(arriving, stalled_region_file)
    recovered_to(resolver, 2)


class RecordingLoader:
    """``load_skops``, remembering every artifact it was asked to load."""

    def __init__(self) -> None:
        self.loaded: list[str] = []

    def __call__(self, path: Path, ref: ArtifactRef) -> Any:
        self.loaded.append(ref.sha256)
        return load_skops(path, ref)


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


@pytest.mark.parametrize(
    "damage", [pytest.param(_flip_one_byte, id="tampered"), pytest.param(_truncate, id="truncated")]
)
def test_damaged_bytes_in_the_region_are_never_loaded(fraud: Registry, damage: Any) -> None:
    loader = RecordingLoader()
    resolver = fraud.resolver(ttl_s=3600, loader=loader)
    damage(fraud.region_file(2))
    fraud.promote(2)
    status = degraded(resolver)
    assert (status.version, resolver.get(REF).version) == (1, 1)
    assert "corrupt" in (status.reason or "")
    v2 = fraud.store.get_version("fraud-detector", 2).artifact.sha256
    assert v2 not in loader.loaded
    assert not list(resolver.cache_dir.glob(f"blobs/{v2}*"))  # nothing landed


def test_damaged_bytes_in_the_resolvers_own_cache_are_replaced_from_the_region(
    fraud: Registry,
) -> None:
    resolver = fraud.resolver(ttl_s=3600)
    artifact = fraud.store.get_version("fraud-detector", 2).artifact
    blob = resolver.cache_dir / "blobs" / f"{artifact.sha256}.{artifact.format}"
    blob.write_bytes(fraud.model_file(2).read_bytes()[:1000])  # a torn or rotten cache file
    fraud.promote(2)
    recovered_to(resolver, 2, timeout=4)


def test_a_model_whose_signature_differs_from_the_schema_is_refused_at_swap_time(
    registry: Registry, signature: Signature
) -> None:
    # Serving sends merchant_risk; v1 was registered as taking it, v2 never saw it.
    sent = signature.model_copy(
        update={"features": [*signature.features, Feature(name="merchant_risk", dtype="float64")]}
    )
    registry.register(0, signature=sent)
    registry.register(1)
    registry.promote(1)
    resolver = registry.resolver(ttl_s=3600, schema=sent)
    assert resolver.get(REF).version == 1
    registry.promote(2)
    status = degraded(resolver)
    assert (status.version, resolver.get(REF).version) == (1, 1)
    assert "refused v2" in (status.reason or "") and "merchant_risk" in (status.reason or "")


def test_a_cold_start_without_the_newest_bytes_serves_the_newest_verifiable_version(
    fraud: Registry,
) -> None:
    fraud.promote(2)
    fraud.region_file(2).unlink()
    resolver = fraud.resolver(ttl_s=3600)
    assert resolver.get(REF).version == 1
    [status] = resolver.status()
    assert status.degraded and "v1" in (status.reason or "")
    fraud.settings.region_store("eu-west").put_file(fraud.model_file(2))
    recovered_to(resolver, 2)
