"""The real resolver configured with a read replica (``read_registry_url``): it follows
promotions through the standby, and never serves a version older than one its own
process wrote, however far the standby lags."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from release_facts import release

from registry.config import Settings
from registry.errors import NotFound
from registry.models import ArtifactRef, VersionCreate
from registry.resolver import Resolver
from registry.store.base import RegistryStore
from registry.store.replicated import ReplicatedStore, read_only_url
from registry.store.sql import SqlStore

from .conftest import Replicated
from .support import wait_for

REGION = "eu-west"
REF = "fraud@production"


class Echo:
    """A "model" that predicts its own bytes: which version serves is plain to see."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def predict(self, rows: list[Any]) -> list[bytes]:
        return [self.data for _ in rows]


def load_echo(path: Path, _ref: ArtifactRef) -> Echo:
    return Echo(path.read_bytes())


@pytest.fixture
def settings(replicated: Replicated, tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        registry_url=replicated.primary_url,
        read_registry_url=replicated.replica_url,
        artifact_root=str(tmp_path / "artifacts"),
        actor="resolver-test",
    )


@pytest.fixture
def resolvers(settings: Settings) -> Iterator[list[Resolver]]:
    made: list[Resolver] = []
    yield made
    for resolver in made:
        resolver.close()


def _resolver(settings: Settings, made: list[Resolver]) -> Resolver:
    resolver = Resolver(
        settings,
        REGION,
        [REF],
        cache_dir=settings.home / f"cache-{len(made)}",
        poll_s=0.02,
        loader=load_echo,
    )
    made.append(resolver.start())
    return resolver


def _release(store: RegistryStore, settings: Settings, tmp_path: Path) -> int:
    """A new version whose bytes are in the resolver's region, released to Production."""
    path = tmp_path / f"{uuid.uuid4().hex}.bin"
    path.write_bytes(uuid.uuid4().bytes)
    artifact = settings.region_store(REGION).put_file(path, format="binary")
    version = store.register("fraud", artifact, VersionCreate()).version
    release(store, "fraud", version)
    return version


def _standby_says(replicated: Replicated) -> int:
    with SqlStore(read_only_url(replicated.replica_url), actor="x", migrate=False) as standby:
        return standby.resolve("fraud", "production")


def _serves(resolver: Resolver) -> int | None:
    """The version the resolver serves now (None while nothing resolves yet)."""
    try:
        return resolver.get(REF).version
    except NotFound:
        return None


def test_the_resolver_follows_a_promotion_through_the_replica(
    replicated: Replicated,
    settings: Settings,
    resolvers: list[Resolver],
    tmp_path: Path,
) -> None:
    with replicated.primary_store() as other:  # another client: no mark in this process
        v1 = _release(other, settings, tmp_path)
        replicated.pair.wait_caught_up()
        replicated.pair.pause()
        v2 = _release(other, settings, tmp_path)
    resolver = _resolver(settings, resolvers)
    assert isinstance(resolver._store, ReplicatedStore)
    # It started from the standby, which has not replayed v2's promotion yet.
    assert _serves(resolver) == v1
    replicated.pair.resume()
    wait_for(lambda: _serves(resolver), lambda version: version == v2)
    assert resolver._store.lag.reached >= resolver._store.mark.seq > 0


def test_the_resolver_never_serves_older_than_its_own_process_wrote(
    replicated: Replicated,
    settings: Settings,
    resolvers: list[Resolver],
    tmp_path: Path,
) -> None:
    following = _resolver(settings, resolvers)
    with settings.connect() as store:  # this process's client, with the read replica
        v1 = _release(store, settings, tmp_path)
        wait_for(lambda: _serves(following), lambda version: version == v1)
        replicated.pair.wait_caught_up()
        replicated.pair.pause()
        v2 = _release(store, settings, tmp_path)
    assert _standby_says(replicated) == v1, "the standby lags behind the promotion"
    # A resolver that starts now resolves v2 at once; the one already running follows it.
    assert _serves(_resolver(settings, resolvers)) == v2
    wait_for(lambda: _serves(following), lambda version: version == v2)
    assert _standby_says(replicated) == v1
