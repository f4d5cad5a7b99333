"""Record the facts a release gate reads, as a release pipeline would, for tests whose
subject is not the gate: verified replicas in every region, passing health checks,
and a passing canary against the current Production version.

These go through the store's public methods (replica rows and checks append no
events, so event sequences are the same as before gates existed).
"""

from __future__ import annotations

from collections.abc import Sequence

from registry.models import Stage
from registry.release.policy import DEFAULT_REGIONS
from registry.release_models import ReplicaState
from registry.store.base import RegistryStore


def make_releasable(
    store: RegistryStore,
    name: str,
    version: int,
    *,
    regions: Sequence[str] = DEFAULT_REGIONS,
    canary: bool = True,
) -> None:
    """Everything the default policy's promotion gate asks of ``version``."""
    replicate_everywhere(store, name, version, regions=regions)
    for region in regions:
        store.record_check(name, version, "health", region=region, passed=True, evidence={})
    if canary:
        production = store.get_model(name).production
        store.record_check(
            name,
            version,
            "canary",
            passed=True,
            evidence={"decision": "non-inferior", "baseline_version": production},
        )


def replicate_everywhere(
    store: RegistryStore, name: str, version: int, *, regions: Sequence[str] = DEFAULT_REGIONS
) -> None:
    """Verified replica rows (what a rollback to ``version`` needs)."""
    artifact = store.get_version(name, version).artifact
    for region in regions:
        store.record_replica(
            name,
            version,
            region,
            ReplicaState.VERIFIED,
            uri=f"file:///regions/{region}/{artifact.sha256}",
            sha256=artifact.sha256,
            size=artifact.size,
        )


def release(store: RegistryStore, name: str, version: int) -> None:
    """None -> Staging -> Production through the gates, with the facts recorded first."""
    if store.get_version(name, version).stage is Stage.NONE:
        store.transition(name, version, Stage.STAGING)
    make_releasable(store, name, version)
    store.transition(name, version, Stage.PRODUCTION)
