"""Group commit (``registry.store.sql.engine.GroupCommit``): concurrent SQLite writers of
one process share a commit, and nothing of what each one did is lost or half-kept.

Real threads on a real SQLite file, through the store and through raw write
transactions. Commits are counted with SQLAlchemy's own ``commit`` event.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from registry.errors import Conflict, RegistryError
from registry.models import ArtifactRef, VersionCreate
from registry.store.sql import SqlStore
from registry.store.sql.engine import Database, GroupCommit

THREADS = 8


def _artifact(seed: str) -> ArtifactRef:
    digest = uuid.uuid5(uuid.NAMESPACE_URL, seed).hex * 2
    return ArtifactRef(uri=f"file:///a/{digest}", sha256=digest, size=1)


def _run(threads: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def one(index: int) -> None:
        start.wait()
        try:
            work(index)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    return errors


def _count_commits(db: Database) -> list[int]:
    commits = [0]

    @event.listens_for(db.engine, "commit")
    def _commit(_conn: object) -> None:
        commits[0] += 1

    return commits


def test_concurrent_registrations_share_commits_and_all_survive(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/group.db"
    store = SqlStore(url, actor="writer", group_commit=True)
    commits = _count_commits(store.db)
    shared = "group/shared"
    per_thread = 40

    def work(index: int) -> None:
        for i in range(per_thread):
            name = shared if i % 2 else f"group/own-{index}"
            store.register(name, _artifact(f"{index}-{i}"), VersionCreate(metrics={"auc": 0.5}))

    assert _run(THREADS, work) == []
    writes = THREADS * per_thread
    assert commits[0] < writes  # some registrations shared a commit
    with SqlStore(url, actor="reader") as fresh:  # a new process's view: all of it is durable
        numbers = [v.version for v in fresh.list_versions(shared, limit=1000)]
        assert sorted(numbers) == list(range(1, THREADS * per_thread // 2 + 1))
        for index in range(THREADS):
            own = fresh.list_versions(f"group/own-{index}", limit=1000)
            assert sorted(v.version for v in own) == list(range(1, per_thread // 2 + 1))
        events = fresh.events(since=0, limit=10_000)
        registered = [e for e in events if e.kind == "version.registered"]
        assert len(registered) == writes
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
    store.close()


def test_a_writer_that_fails_changes_nothing_and_the_others_are_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/group.db"
    store = SqlStore(url, actor="writer", group_commit=True)
    name = "group/keyed"
    first = store.register(name, _artifact("a"), VersionCreate(idempotency_key="k-1"))

    def work(index: int) -> None:
        for i in range(20):
            if index % 2:  # the same key with other bytes: refused inside the transaction
                with pytest.raises(Conflict):
                    store.register(
                        name, _artifact(f"x{index}{i}"), VersionCreate(idempotency_key="k-1")
                    )
            else:
                store.register(name, _artifact(f"{index}-{i}"), VersionCreate())

    assert _run(THREADS, work) == []
    versions = store.list_versions(name, limit=1000)
    assert sorted(v.version for v in versions) == list(range(1, 1 + 1 + THREADS // 2 * 20))
    assert [v.version for v in versions if v.idempotency_key == "k-1"] == [first.version]
    store.close()


def _tables(db: Database) -> None:
    with db.write() as conn:
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE child (id INTEGER PRIMARY KEY,"
                " parent_id INTEGER REFERENCES parent(id))"
            )
        )
        conn.execute(text("INSERT INTO parent (id) VALUES (1)"))


def _children(db: Database) -> list[int]:
    with db.read() as conn:
        return [row[0] for row in conn.execute(text("SELECT id FROM child ORDER BY id"))]


def test_a_commit_that_fails_fails_every_writer_in_it_and_keeps_none(tmp_path: Path) -> None:
    """The first writer breaks a deferred foreign key, which SQLite checks only at
    COMMIT: the two writers that queued behind it share that commit, so all three hear
    the error, and none of their rows is kept."""
    db = Database(f"sqlite:///{tmp_path}/group.db", group_commit=True)
    _tables(db)
    groups = db._groups
    assert isinstance(groups, GroupCommit)
    outcomes: dict[int, str] = {}

    def first() -> None:
        try:
            with db.write() as conn:
                conn.execute(text("PRAGMA defer_foreign_keys = ON"))
                conn.execute(text("INSERT INTO child (id, parent_id) VALUES (10, 999)"))
                deadline = time.monotonic() + 10
                while groups._waiting < 2:  # hold the turn until both others queue
                    assert time.monotonic() < deadline
                    time.sleep(0.001)
            outcomes[10] = "ok"
        except RegistryError as exc:
            outcomes[10] = str(exc)

    def later(child: int) -> None:
        try:
            with db.write() as conn:
                conn.execute(text(f"INSERT INTO child (id, parent_id) VALUES ({child}, 1)"))
            outcomes[child] = "ok"
        except RegistryError as exc:
            outcomes[child] = str(exc)

    threads = [threading.Thread(target=first)]
    threads += [threading.Thread(target=later, args=(c,)) for c in (11, 12)]
    threads[0].start()
    while groups._group is None:
        time.sleep(0.001)
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert set(outcomes) == {10, 11, 12}
    assert all("FOREIGN KEY" in outcome for outcome in outcomes.values()), outcomes
    assert _children(db) == []
    with db.write() as conn:  # the next writer starts a new group and commits
        conn.execute(text("INSERT INTO child (id, parent_id) VALUES (13, 1)"))
    assert _children(db) == [13]
    db.dispose()


def test_a_write_inside_a_write_is_a_savepoint_of_the_same_group(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/group.db", group_commit=True)
    _tables(db)
    with db.write() as outer:
        outer.execute(text("INSERT INTO child (id, parent_id) VALUES (1, 1)"))
        with pytest.raises(ValueError), db.write() as inner:
            assert inner is outer
            inner.execute(text("INSERT INTO child (id, parent_id) VALUES (2, 1)"))
            raise ValueError("undo the inner write only")
        with db.write() as inner:
            inner.execute(text("INSERT INTO child (id, parent_id) VALUES (3, 1)"))
    assert _children(db) == [1, 3]
    with pytest.raises(ValueError), db.write() as conn:
        conn.execute(text("INSERT INTO child (id, parent_id) VALUES (4, 1)"))
        raise ValueError("undo all of it")
    assert _children(db) == [1, 3]
    db.dispose()


def test_group_commit_is_for_sqlite_only(postgres_database: Any) -> None:
    url = postgres_database.create_schema("group")
    db = Database(url, group_commit=True)
    try:
        assert db._groups is None  # row locks let PostgreSQL writers run side by side
    finally:
        db.dispose()
        postgres_database.drop_schema(url)
