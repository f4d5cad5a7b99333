"""A backup taken while another process keeps registering is consistent: what it restores
is a prefix of the source's log, and every version it holds has its registration event
(and every registration event its version), with no gaps in the sequence."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable
from multiprocessing.synchronize import Event as StopEvent
from pathlib import Path

import pytest
from store.support import artifact

from registry.backup import backup, restore
from registry.models import Stage, VersionCreate
from registry.store.sql import SqlStore

from .test_backup import registry_urls

__all__ = ["registry_urls"]  # the fixture, shared with test_backup

MODELS = ("fraud", "payments/churn")
BEFORE_BACKUP = 20  # registrations the writer makes before the backup starts


def keep_registering(url: str, started: StopEvent, stop: StopEvent) -> None:
    """Register versions of both models (staging every fifth) until told to stop."""
    with SqlStore(url, actor="writer") as store:
        count = 0
        while not stop.is_set():
            name = MODELS[count % len(MODELS)]
            mv = store.register(name, artifact(uuid.uuid4().bytes), VersionCreate())
            if mv.version % 5 == 0:
                store.transition(name, mv.version, Stage.STAGING, reason="load")
            count += 1
            if count == BEFORE_BACKUP:
                started.set()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_backup_under_write_load_restores_a_consistent_prefix(
    backend: str, registry_urls: Callable[[str], str], tmp_path: Path
) -> None:
    source_url, target_url = registry_urls(backend), registry_urls(backend)
    context = multiprocessing.get_context("spawn")
    started, stop = context.Event(), context.Event()
    writer = context.Process(target=keep_registering, args=(source_url, started, stop))
    writer.start()
    try:
        assert started.wait(60), "the writer never got going"
        snapshots = []
        for round_ in range(3):  # several backups, each in the middle of the writes
            path = tmp_path / f"under-load-{round_}.backup"
            backup(source_url, path)
            snapshots.append(path)
    finally:
        stop.set()
        writer.join(60)
    assert writer.exitcode == 0

    with SqlStore(source_url, actor="check") as source:
        source_events = source.events(limit=10_000)
        restored_counts = []
        for index, path in enumerate(snapshots):
            url = target_url if index == 0 else registry_urls(backend)
            restore(path, url)
            with SqlStore(url, actor="check") as target:
                events = target.events(limit=10_000)
                assert events == source_events[: len(events)]
                assert [e.seq for e in events] == list(range(1, len(events) + 1))
                assert target.latest_seq() == len(events)
                registered = {
                    (e.model, e.version) for e in events if e.kind == "version.registered"
                }
                held = {
                    (m.name, v.version)
                    for m in target.list_models()
                    for v in target.list_versions(m.name, limit=10_000)
                }
                assert held == registered
                for model in target.list_models():
                    numbers = sorted(v for name, v in held if name == model.name)
                    assert numbers == list(range(1, model.latest_version + 1))
                restored_counts.append(len(events))
        # the backups were taken while the log grew: each later one holds at least as much
        assert restored_counts == sorted(restored_counts)
        assert restored_counts[0] >= BEFORE_BACKUP
        assert restored_counts[-1] <= len(source_events)
        assert len(source_events) > restored_counts[0], "no writes went on around the backups"
