"""Following the registry: a pointer change is served within a bounded time, a
rollback switches at once, and a burst of promotions leaves no split fleet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from registry.models import Stage
from registry.release.policy import Gate, ReleasePolicy

from .conftest import MODEL, REF, Registry
from .support import wait_for


def test_a_promotion_is_followed(fraud: Registry) -> None:
    resolver = fraud.resolver(ttl_s=3600)
    assert resolver.get(REF).version == 1
    fraud.promote(2)
    served = wait_for(lambda: resolver.get(REF), lambda s: s.version == 2)
    assert served.generation == fraud.store.get_model(MODEL).generation
    [status] = wait_for(resolver.status, lambda s: s[0].behind == 0)
    assert (status.version, status.degraded, status.swaps) == (2, False, 1)


def test_a_rollback_propagates_and_forces_the_switch(fraud: Registry) -> None:
    fraud.promote(2)
    resolver = fraud.resolver(ttl_s=3600)
    assert resolver.get(REF).version == 2
    change = fraud.store.rollback(MODEL, reason="v2 flags every other payment")
    assert fraud.store.get_version(MODEL, 2).stage is Stage.ARCHIVED
    [event] = [e for e in fraud.store.history(MODEL) if e.kind == "rollback"]
    assert event.details.invalidate
    served = wait_for(lambda: resolver.get(REF), lambda s: s.version == 1)
    assert served.generation == change.generation


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_on_postgresql_a_promotion_wakes_the_follower(fraud: Registry) -> None:
    # The poll is an hour away: only the NOTIFY sent with the event can wake it.
    resolver = fraud.resolver(poll_s=3600, ttl_s=3600)
    fraud.promote(2)
    wait_for(lambda: resolver.get(REF).version, lambda v: v == 2, timeout=5)


@pytest.mark.parametrize("backend", ["sqlite"])  # the cache folder is the same on both
def test_resolvers_sharing_the_default_cache_folder_all_follow(fraud: Registry) -> None:
    # One host, one settings: every resolver's cache is <home>/resolver/<region>.
    fleet = [fraud.resolver(cache_dir=None, ttl_s=3600) for _ in range(20)]
    assert {r.cache_dir for r in fleet} == {fraud.settings.home / "resolver" / "eu-west"}
    fraud.promote(2)
    wait_for(lambda: {r.get(REF).version for r in fleet}, lambda seen: seen == {2})
    assert all(not s.degraded for r in fleet for s in r.status())


PROMOTIONS = 20
# A follower on PostgreSQL holds two connections (its store and its LISTEN channel); the
# test server allows 100 clients for every suite that shares it.
FOLLOWERS = {"sqlite": 200, "postgres": 30}


def test_after_a_burst_of_promotions_every_follower_serves_one_version(
    fraud: Registry, backend: str
) -> None:
    # Staged, verified and healthy in every region first, so the burst is the promotions
    # alone (the canary gate, which needs a fresh canary per baseline, is not required).
    fraud.store.set_policy(
        MODEL, ReleasePolicy(required=(Gate.REPLICAS, Gate.HEALTH)), reason="burst"
    )
    versions = [fraud.register(n % 3) for n in range(PROMOTIONS)]
    for version in versions:
        fraud.stage(version)
    fleet = [
        fraud.resolver(poll_s=0.25, ttl_s=3600, heartbeat_s=3600) for _ in range(FOLLOWERS[backend])
    ]
    burst = [sys.executable, str(Path(__file__).with_name("burst.py")), fraud.store.url, MODEL]
    subprocess.run([*burst, *map(str, versions)], check=True, timeout=60)
    final = fraud.store.resolve(MODEL, "production")
    assert final == versions[-1]
    served = wait_for(
        lambda: {r.get(REF).version for r in fleet}, lambda seen: seen == {final}, timeout=20
    )
    assert served == {final}
    assert all(not s.degraded for r in fleet for s in r.status())
