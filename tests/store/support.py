"""Small builders the store tests share: versions, promotions and state snapshots."""

from __future__ import annotations

import hashlib
import multiprocessing
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from registry.models import (
    ArtifactRef,
    Event,
    ModelVersion,
    RegisteredModel,
    Stage,
    VersionCreate,
)
from registry.store.base import RegistryStore

R = TypeVar("R")


def artifact(data: bytes) -> ArtifactRef:
    """As conftest's ``artifact_for`` (test modules cannot import conftest reliably)."""
    digest = hashlib.sha256(data).hexdigest()
    return ArtifactRef(uri=f"file:///artifacts/{digest}", sha256=digest, size=len(data))


def register_versions(
    store: RegistryStore, name: str, count: int, **meta: Any
) -> list[ModelVersion]:
    """``count`` new versions of ``name``, each with its own artifact bytes."""
    return [
        store.register(name, artifact(uuid.uuid4().bytes), VersionCreate.parse(meta))
        for _ in range(count)
    ]


def promote(store: RegistryStore, name: str, version: int) -> None:
    """None → Staging → Production, the way a release pipeline does it (gate facts first)."""
    from release_facts import release

    release(store, name, version)


def serve_in_turn(store: RegistryStore, name: str, count: int) -> None:
    """Register ``count`` versions and promote each in turn (the last one serves)."""
    for mv in register_versions(store, name, count):
        promote(store, name, mv.version)


@dataclass(frozen=True)
class Snapshot:
    """Everything a caller can observe about the registry."""

    models: list[RegisteredModel]
    versions: dict[str, list[ModelVersion]]
    events: list[Event]


def snapshot(store: RegistryStore) -> Snapshot:
    models = store.list_models()
    return Snapshot(
        models=models,
        versions={m.name: store.list_versions(m.name) for m in models},
        events=store.events(limit=10_000),
    )


def assert_only_a_refusal_recorded(before: Snapshot, after: Snapshot, gate: str) -> Event:
    """Nothing moved: the versions and every pointer are as before, and the one new
    event is the refusal (refusals are history too)."""
    assert after.versions == before.versions
    assert [(m.name, m.generation, m.production, m.aliases) for m in after.models] == [
        (m.name, m.generation, m.production, m.aliases) for m in before.models
    ]
    assert after.events[:-1] == before.events
    refusal = after.events[-1]
    assert (refusal.kind, refusal.details.gate) == ("refused", gate)
    assert refusal.details.reasons
    return refusal


def production_versions(store: RegistryStore, name: str) -> list[int]:
    return [v.version for v in store.list_versions(name) if v.stage == Stage.PRODUCTION]


class ProcessPool:
    """Spawned worker processes, started once and reused by the concurrency tests
    (spawning eight interpreters per test would cost seconds each time)."""

    START_DELAY_S = 0.3
    TIMEOUT_S = 90

    def __init__(self, size: int, warm: Callable[[float], object]) -> None:
        """Start ``size`` processes and have each call ``warm`` once (to import what the
        tests will run) without waiting for them: see ``ready``."""
        self.size = size
        self._pool = multiprocessing.get_context("spawn").Pool(size)
        start_at = time.time() + self.START_DELAY_S
        self._warming = self._pool.map_async(warm, [start_at] * size, chunksize=1)

    def ready(self) -> ProcessPool:
        """Wait until every process has booted and imported the registry."""
        self._warming.get(self.TIMEOUT_S)
        return self

    def run_together(self, target: Callable[..., R], calls: Sequence[tuple[Any, ...]]) -> list[R]:
        """Run ``target(*call, start_at)`` once per call, each in its own process,
        all released at the same instant; their results in call order."""
        if len(calls) > self.size:
            raise ValueError(f"{len(calls)} calls need as many processes; the pool has {self.size}")
        start_at = time.time() + self.START_DELAY_S
        pending = self._pool.starmap_async(
            target, [(*call, start_at) for call in calls], chunksize=1
        )
        return pending.get(self.TIMEOUT_S)

    def close(self) -> None:
        # The workers are idle here; stopping them beats waiting for 8 interpreter exits.
        self._pool.terminate()
        self._pool.join()
