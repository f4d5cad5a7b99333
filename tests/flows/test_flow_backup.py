"""The backup flow, as real flow runs (take -> verify -> shelve -> prune): N+2 runs
leave exactly the newest N on the shelf (a folder or S3; SQLite, and once PostgreSQL),
the newest restores into an empty registry that answers as the source did (history,
the rollback it would make), and a registry that is down fails the run after its
retries with the shelf untouched."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from artifacts.conftest import aws_env, make_bucket, s3_client, s3_endpoint
from artifacts.support import free_port
from backup.test_backup import MODEL as WORLD_MODEL
from backup.test_backup import answers, build_world, registry_urls, without_times
from flow_helpers import ACTOR, MODEL, history, open_store
from store.support import artifact

from flows.backup import backup_flow
from registry.backup import restore
from registry.backup_shelf import BackupRun, Shelf, open_shelf
from registry.models import VersionCreate
from registry.store.sql import SqlStore

__all__ = ["aws_env", "make_bucket", "registry_urls", "s3_client", "s3_endpoint"]

KEEP = 2


def write(url: str) -> None:
    """Something new in the registry (its seq moves), so each backup differs."""
    with SqlStore(url, actor="writer") as store:
        store.register("scratch", artifact(uuid.uuid4().bytes), VersionCreate())


def run_backups(url: str, times: int, **parameters: Any) -> list[BackupRun]:
    results: list[BackupRun] = []
    for _ in range(times):
        write(url)
        state = backup_flow(**parameters, return_state=True)
        assert state.is_completed(), state.message
        result = state.result()
        assert isinstance(result, BackupRun)
        results.append(result)
    return results


def assert_newest_kept(shelf: Shelf, results: list[BackupRun]) -> None:
    assert [e.name for e in shelf.entries()] == [r.name for r in reversed(results[-KEEP:])]
    assert [r.pruned for r in results] == [
        (),
        (),
        *(((results[i - KEEP].name,)) for i in range(KEEP, len(results))),
    ]
    seqs = [r.seq for r in results]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


@pytest.fixture
def s3_root(
    make_bucket: Callable[[], str], s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A bucket of the moto server, reached as a worker would: endpoint from the env."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    return f"s3://{make_bucket()}/nightly"


@pytest.mark.parametrize("where", ["artifact-root", "s3-parameter"])
def test_n_plus_two_runs_keep_the_newest_n_and_the_newest_restores(
    released_home: Path,
    where: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{released_home}/registry.db"
    if where == "artifact-root":
        root, parameters = str(released_home / "artifacts"), {}
    else:
        root = request.getfixturevalue("s3_root")
        parameters = {"shelf": root}

    results = run_backups(url, KEEP + 2, keep=KEEP, **parameters)

    shelf = open_shelf(root)
    assert_newest_kept(shelf, results)
    newest = shelf.latest()
    assert (newest.name, newest.size, newest.seq, newest.sha256) == (
        results[-1].name,
        results[-1].size,
        results[-1].seq,
        results[-1].sha256,
    )
    assert not any((released_home / "work").rglob("*.tar"))  # the local copy is gone

    shelf.get(newest.name, tmp_path / "newest.tar")
    target = f"sqlite:///{tmp_path}/restored.db"
    restore(tmp_path / "newest.tar", target)
    with SqlStore(target, actor=ACTOR) as restored, open_store(released_home) as source:
        assert restored.history(MODEL) == history(released_home)
        assert restored.latest_seq() == newest.seq
        # The rollback each would make now: same target, same change.
        assert without_times(restored.rollback(MODEL, reason="drill")) == without_times(
            source.rollback(MODEL, reason="drill")
        )
        assert restored.get_model(MODEL).production == source.get_model(MODEL).production == 1


@pytest.mark.postgres
def test_on_postgresql_the_runs_keep_the_newest_n_on_s3_and_it_restores(
    home: Path,
    registry_urls: Callable[[str], str],
    s3_root: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source_url = registry_urls("postgres")
    with SqlStore(source_url, actor="builder") as source:
        world = build_world(source)
    monkeypatch.setenv("MODELREG_URL", source_url)
    monkeypatch.setenv("MODELREG_ARTIFACTS", s3_root)

    results = run_backups(source_url, KEEP + 2, keep=KEEP)

    shelf = open_shelf(s3_root)
    assert_newest_kept(shelf, results)
    shelf.get(shelf.latest().name, home / "newest.tar")
    target_url = registry_urls("postgres")
    restore(home / "newest.tar", target_url)
    with SqlStore(source_url, actor="x") as source, SqlStore(target_url, actor="x") as target:
        assert answers(target, world) == answers(source, world)
        assert without_times(target.rollback(WORLD_MODEL, reason="drill")) == without_times(
            source.rollback(WORLD_MODEL, reason="drill")
        )


def test_a_registry_that_is_down_fails_the_run_after_retries_and_the_shelf_is_unchanged(
    home: Path, registry_urls: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One good night first, from a registry that was up.
    up = registry_urls("sqlite")
    monkeypatch.setenv("MODELREG_URL", up)
    [earlier] = run_backups(up, 1, keep=KEEP)
    shelf = open_shelf(str(home / "artifacts"))
    before = sorted(p.name for p in (home / "artifacts" / "backups").iterdir())
    monkeypatch.setenv("MODELREG_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/gone")
    import tasks.backup

    # The real task and its retries, without the production delays (14 s of waiting).
    monkeypatch.setattr(tasks.backup.take_backup, "retry_delay_seconds", [0.0, 0.0, 0.0])

    state = backup_flow(keep=KEEP, return_state=True)

    assert state.is_failed()
    assert "no backup taken, the shelf is unchanged" in str(state.message)
    assert "unavailable" in str(state.message)
    assert take_attempts(state) == 4  # the first try and its three retries
    assert [e.name for e in shelf.entries()] == [earlier.name]
    assert sorted(p.name for p in (home / "artifacts" / "backups").iterdir()) == before
    assert not any(p.is_file() for p in (home / "work").rglob("*"))  # no partial file


def test_a_server_url_is_refused_at_once_without_retries(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELREG_URL", f"http://127.0.0.1:{free_port()}")

    state = backup_flow(return_state=True)

    assert state.is_failed()
    assert "reads the registry's database" in str(state.message)
    assert take_attempts(state) == 1
    assert not (home / "artifacts" / "backups").exists()


def take_attempts(state: Any) -> int:
    """How many times the run's take-backup task ran (Prefect counts retries)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        runs = client.read_task_runs(flow_run_filter=only_this_run)
    [take] = [r for r in runs if r.name.startswith("take-backup")]
    return int(take.run_count)
