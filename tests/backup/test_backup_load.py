"""A backup taken during a write load (issue #12, "Done when"): several writer processes
register, promote through the gates, move aliases and roll back while ``registry.backup``
runs; the backup restores, on the same backend and across (SQLite -> PostgreSQL and
PostgreSQL -> SQLite), to a registry that passes the full consistency check, with the
same history, the same rollback targets and no lost events.

What "the same" means while writers go on: the backup holds the source as of one event
sequence number B (its event counter, restored with it). The source's answers *at B* are
computed from the source afterwards, cut at B:

- events and ``history``: the source's events with seq <= B, field for field;
- ``production_at(t)``: the source's own answer, at instants t before the model's first
  event after B (so no later write can be in it);
- the rollback target: the store's rule (``choose_rollback_target``) over the source's
  Production timeline cut at B, which the restored registry must then roll back to;
- ``search`` and ``lineage_impact``: the source's versions registered by B (registration
  metadata never changes, and these writers change no tags), with the stage and aliases
  the source's log gives them at B, in the source's order.
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing.synchronize import Event as StopEvent
from pathlib import Path

import pytest
from release_facts import release
from store.support import artifact

from registry.backup import backup, restore
from registry.consistency import check
from registry.errors import GateRefused
from registry.models import Event, LineageHit, ModelVersion, Stage
from registry.release.transitions import ProductionChange, choose_rollback_target
from registry.store.sql import SqlStore

from .test_backup import meta, registry_urls

__all__ = ["registry_urls"]  # the fixture, shared with test_backup

WRITERS = 3
SHARED = "load/shared"  # every writer moves its own alias on it
STEPS_BEFORE_BACKUP = 8  # each writer's steps before the backup starts
SEARCHES = ("", "metrics.auc > 0.85", "stage = 'Production'", "tags.team = 'payments'")
OTHER_BACKEND = {"sqlite": "postgres", "postgres": "sqlite"}


def model_of(writer: int) -> str:
    return f"load/writer-{writer}"


def keep_writing(url: str, writer: int, started: StopEvent, stop: StopEvent) -> None:
    """Register, release through the gates, move aliases and roll back, until told to stop."""
    name = model_of(writer)
    with SqlStore(url, actor=f"writer-{writer}") as store:
        step = 0
        while not stop.is_set():
            auc = 0.8 + (step % 20) / 100
            mv = store.register(name, artifact(uuid.uuid4().bytes), meta(auc, f"2026-{step:04}"))
            shared = store.register(SHARED, artifact(uuid.uuid4().bytes), meta(auc, "shared"))
            try:
                if step % 3 != 2:
                    release(store, name, mv.version)
                else:
                    store.transition(name, mv.version, Stage.STAGING, reason="candidate")
                store.set_aliases(name, {"challenger": mv.version}, reason="load")
                store.set_aliases(SHARED, {f"w{writer}": shared.version}, reason="load")
                if step % 4 == 3:
                    store.rollback(name, reason="load")
            except GateRefused:
                pass  # refusals are events too: part of the load
            step += 1
            if step == STEPS_BEFORE_BACKUP:
                started.set()


@dataclass
class Underway:
    """The source registry after the load, and what was taken during it."""

    url: str
    backup: Path
    checked_online: bool


def run_load(source_url: str, tmp_path: Path) -> Underway:
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    started = [context.Event() for _ in range(WRITERS)]
    writers = [
        context.Process(target=keep_writing, args=(source_url, i, started[i], stop))
        for i in range(WRITERS)
    ]
    for process in writers:
        process.start()
    try:
        for flag in started:
            assert flag.wait(120), "a writer never got going"
        path = tmp_path / "under-load.backup"
        backup(source_url, path)
        online = check(source_url)  # the check, too, runs while they write
        assert online.ok, online.violations
    finally:
        stop.set()
        for process in writers:
            process.join(120)
    assert [p.exitcode for p in writers] == [0] * WRITERS
    return Underway(source_url, path, checked_online=True)


# ---------------------------------------------------------------- the source at B


def all_events(store: SqlStore) -> list[Event]:
    events: list[Event] = []
    while batch := store.events(since=events[-1].seq if events else 0, limit=10_000):
        events += batch
    return events


@dataclass
class AtSeq:
    """The source's pointers replayed from its log up to seq B."""

    seq: int
    events: list[Event]
    stages: dict[tuple[str, int], Stage] = field(default_factory=dict)
    aliases: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    timelines: dict[str, list[ProductionChange]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def replay(cls, events: list[Event], seq: int) -> AtSeq:
        state = cls(seq, [e for e in events if e.seq <= seq])
        for e in state.events:
            state.apply(e)
        return state

    def apply(self, e: Event) -> None:
        production = Stage.PRODUCTION.value
        if e.kind == "version.registered":
            assert e.version is not None
            self.stages[e.model, e.version] = Stage.NONE
        elif e.kind == "stage":
            assert e.version is not None and e.to_value is not None
            self.stages[e.model, e.version] = Stage(e.to_value)
            if production in (e.to_value, e.from_value):
                entered = e.version if e.to_value == production else None
                left = e.version if e.from_value == production else None
                self.timelines[e.model].append(ProductionChange(e.seq, entered, left))
        elif e.kind == "rollback":
            assert e.to_value is not None
            left = int(e.from_value) if e.from_value else None
            if left is not None:
                self.stages[e.model, left] = Stage.ARCHIVED
            self.stages[e.model, int(e.to_value)] = Stage.PRODUCTION
            change = ProductionChange(e.seq, int(e.to_value), left, rollback=True)
            self.timelines[e.model].append(change)
        elif e.kind == "alias" and e.subject is not None:
            if e.to_value is None:
                self.aliases[e.model].pop(e.subject, None)
            else:
                self.aliases[e.model][e.subject] = int(e.to_value)

    def models(self) -> list[str]:
        return sorted({e.model for e in self.events})

    def production(self, name: str) -> int | None:
        serving = [v for (m, v), s in self.stages.items() if m == name and s is Stage.PRODUCTION]
        assert len(serving) <= 1
        return serving[0] if serving else None

    def rollback_target(self, name: str) -> int | None:
        choice = choose_rollback_target(self.timelines[name], self.production(name), None)
        return choice.evidence.target

    def version(self, mv: ModelVersion) -> ModelVersion | None:
        """``mv`` as it was at B, or None if it was not registered yet."""
        stage = self.stages.get((mv.name, mv.version))
        if stage is None:
            return None
        aliases = tuple(sorted(a for a, v in self.aliases[mv.name].items() if v == mv.version))
        return mv.model_copy(update={"stage": stage, "aliases": aliases})

    def hit(self, hit: LineageHit, protected: frozenset[str]) -> LineageHit | None:
        """``hit`` as it was at B: its stage, and whether it was live then (Production, or
        an alias of ``protected``; these writers bind no app release)."""
        stage = self.stages.get((hit.name, hit.version))
        if stage is None:
            return None
        why = ["Production"] if stage is Stage.PRODUCTION else []
        why += [
            f"alias {a} (protected)"
            for a, v in sorted(self.aliases[hit.name].items())
            if v == hit.version and a in protected
        ]
        return hit.model_copy(
            update={
                "stage": stage,
                "in_production": stage is Stage.PRODUCTION,
                "live": bool(why),
                "why_live": tuple(why),
            }
        )

    def instants(self, name: str, later: list[Event]) -> list[datetime]:
        """Instants for ``production_at``: each event time of the model up to B, a moment
        before its first event, and between; all before its first event after B."""
        times = [e.at for e in self.events if e.model == name]
        limit = min((e.at for e in later if e.model == name), default=None)
        moments = [times[0] - timedelta(seconds=1)]
        for a, b in zip(times, [*times[1:], times[-1] + timedelta(microseconds=2)], strict=True):
            moments += [a, a + (b - a) / 2]
        return [t for t in moments if limit is None or t < limit]


def search_at(source: SqlStore, at: AtSeq, text: str) -> list[ModelVersion]:
    found = []
    for mv in source.search(text.replace("stage = 'Production'", ""), limit=10_000):
        then = at.version(mv)
        if then is not None and ("stage" not in text or then.stage is Stage.PRODUCTION):
            found.append(then)
    return found


def lineage_at(source: SqlStore, at: AtSeq, **query: str) -> list[LineageHit]:
    """The source's answer as it was at B, in the store's order: live first, then by
    name and version."""
    found = []
    for hit in source.lineage_impact(**query, limit=10_000):
        protected = frozenset(source.get_policy(hit.name).policy.protected_aliases)
        then = at.hit(hit, protected)
        if then is not None:
            found.append(then)
    found.sort(key=lambda h: (h.name, h.version))
    return sorted(found, key=lambda h: not h.live)


# ---------------------------------------------------------------- the test


@pytest.mark.slow
# Both need PostgreSQL: the SQLite source is restored into PostgreSQL too.
@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("sqlite", marks=pytest.mark.postgres),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def test_a_backup_under_write_load_restores_the_registry_at_its_seq(
    backend: str, registry_urls: Callable[[str], str], tmp_path: Path
) -> None:
    underway = run_load(registry_urls(backend), tmp_path)

    with SqlStore(underway.url, actor="check") as source:
        source_events = all_events(source)
        for target_backend in (backend, OTHER_BACKEND[backend]):
            target_url = registry_urls(target_backend)
            restore(underway.backup, target_url)
            with SqlStore(target_url, actor="oncall") as target:
                assert_restored_at_its_seq(source, source_events, target, target_url)


def assert_restored_at_its_seq(
    source: SqlStore, source_events: list[Event], target: SqlStore, target_url: str
) -> None:
    report = check(target_url)
    assert report.ok, report.violations

    seq = target.latest_seq()  # the backup's point: its event counter
    restored_events = all_events(target)
    # no lost events, none half-present, none from after the backup's point
    assert restored_events == [e for e in source_events if e.seq <= seq]
    assert [e.seq for e in restored_events] == list(range(1, seq + 1))
    assert seq >= WRITERS * STEPS_BEFORE_BACKUP * 4, "the backup came before the load"
    assert len(source_events) > seq, "no writes went on after the backup's point"

    at = AtSeq.replay(source_events, seq)
    later = [e for e in source_events if e.seq > seq]
    names = at.models()
    assert [m.name for m in target.list_models()] == names
    assert {e.kind for e in restored_events} >= {"stage", "alias", "rollback"}
    for name in names:
        assert target.history(name) == [e for e in source.history(name) if e.seq <= seq]
        for moment in at.instants(name, later):
            assert target.production_at(name, moment) == source.production_at(name, moment), (
                name,
                moment,
            )
        assert target.get_model(name).production == at.production(name)
    for text in SEARCHES:
        expected = search_at(source, at, text)
        assert target.search(text, limit=10_000) == expected, text
        assert target.search(text) == expected[:100], text
    for query in ({"dataset": "transactions"}, {"pipeline": "fe-2.3"}, {"commit": "9f1c2ab"}):
        assert target.lineage_impact(**query, limit=10_000) == lineage_at(source, at, **query)

    # the same rollback targets: each writer's model rolls back where the source's log says
    rolled = 0
    for name in names:
        expected_target = at.rollback_target(name)
        if expected_target is None:
            with pytest.raises(GateRefused):
                target.rollback(name, reason="after restore")
            continue
        change = target.rollback(name, reason="after restore")
        assert change.events[-1].to_value == str(expected_target)
        assert target.get_model(name).production == expected_target
        rolled += 1
    assert rolled >= 1
    assert check(target_url).ok  # and it stays consistent after being used
