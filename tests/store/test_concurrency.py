"""Concurrent registrants and promoters, as threads and as OS processes.

No duplicate or skipped version numbers, no lost pointer updates, no lock errors
surfaced to callers (a lost race is a ``Conflict``), never two Production versions.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from release_facts import make_releasable

from registry.models import Event, Stage, VersionCreate
from registry.release.policy import ReleasePolicy
from registry.store.sql import SqlStore

from . import workers
from .support import ProcessPool, artifact, promote, register_versions


def _registered_numbers(store: SqlStore, name: str) -> list[int]:
    return sorted(v.version for v in store.list_versions(name, limit=10_000))


def test_threads_registering_the_same_new_model_get_consecutive_numbers(
    make_store: Callable[..., SqlStore],
) -> None:
    threads, per_thread = 8, 25
    stores = [make_store(actor=f"thread-{i}") for i in range(threads)]
    start = threading.Barrier(threads)

    def register(store: SqlStore) -> list[int]:
        start.wait(30)
        return [
            store.register("fraud", artifact(f"{id(store)}-{i}".encode()), VersionCreate()).version
            for i in range(per_thread)
        ]

    with ThreadPoolExecutor(threads) as pool:
        returned = [n for numbers in pool.map(register, stores) for n in numbers]

    expected = list(range(1, threads * per_thread + 1))
    assert sorted(returned) == expected
    assert _registered_numbers(stores[0], "fraud") == expected
    assert stores[0].get_model("fraud").latest_version == threads * per_thread
    kinds = Counter(e.kind for e in stores[0].events(limit=10_000))
    assert kinds == {"model.created": 1, "version.registered": threads * per_thread}


def test_one_store_shared_by_threads(store: SqlStore) -> None:
    with ThreadPoolExecutor(4) as pool:
        returned = list(
            pool.map(
                lambda i: store.register("fraud", artifact(bytes([i])), VersionCreate()).version,
                range(40),
            )
        )

    assert sorted(returned) == list(range(1, 41))


def test_processes_registering_the_same_model_get_consecutive_numbers(
    store: SqlStore, store_url: str, processes: ProcessPool
) -> None:
    count, per_process = 4, 20

    reports = processes.run_together(
        workers.register_many, [(store_url, "fraud", per_process)] * count
    )

    assert [kind for kind, _ in reports] == ["ok"] * count, reports
    returned = sorted(n for _, numbers in reports for n in numbers)
    expected = list(range(1, count * per_process + 1))
    assert returned == expected
    assert _registered_numbers(store, "fraud") == expected


def _production_sets(events: list[Event], start: set[int]) -> list[set[int]]:
    """Replay pointer events: the set of Production versions after each generation."""
    serving, after = set(start), []
    for i, event in enumerate(events):
        if event.kind == "rollback":
            serving.discard(int(event.from_value or 0))
            serving.add(int(event.to_value or 0))
        elif event.kind == "stage":
            if event.from_value == Stage.PRODUCTION.value:
                serving.discard(event.version or 0)
            if event.to_value == Stage.PRODUCTION.value:
                serving.add(event.version or 0)
        last_of_change = i + 1 == len(events) or events[i + 1].generation != event.generation
        if last_of_change:
            after.append(set(serving))
    return after


def test_processes_flipping_production_lose_no_update(
    store: SqlStore, store_url: str, processes: ProcessPool
) -> None:
    count, rounds = 8, 12
    register_versions(store, "fraud", 1 + count * rounds)
    promote(store, "fraud", 1)
    # The gates run on every flip, but a canary compares with one Production version
    # and here Production changes under every caller: this policy leaves it out.
    store.set_policy(
        "fraud", ReleasePolicy.parse({"required": ["replicas", "health"]}), reason="race"
    )
    staged = [list(range(2 + p * rounds, 2 + (p + 1) * rounds)) for p in range(count)]
    for version in (v for own in staged for v in own):
        store.transition("fraud", version, Stage.STAGING)
        make_releasable(store, "fraud", version, canary=False)
    initial = store.get_model("fraud").generation
    last_seq = store.events(limit=10_000)[-1].seq

    reports = processes.run_together(
        workers.flip, [(store_url, "fraud", 1, own, rounds) for own in staged]
    )

    outcomes = [o for report in reports for o in report]
    assert len(outcomes) == count * rounds
    assert {kind for kind, _ in outcomes} <= {"ok", "conflict"}, outcomes
    won = sorted(generation for kind, generation in outcomes if kind == "ok")
    final = store.get_model("fraud").generation
    assert won == list(range(initial + 1, final + 1))  # one generation per success, no gap
    changes = store.events(since=last_seq, limit=10_000)
    assert sorted({e.generation for e in changes}) == won
    assert all(e.kind in ("stage", "rollback") for e in changes)
    assert all(len(serving) == 1 for serving in _production_sets(changes, {1}))
    production = [v.version for v in store.list_versions("fraud") if v.stage == Stage.PRODUCTION]
    assert production == [store.get_model("fraud").production]
