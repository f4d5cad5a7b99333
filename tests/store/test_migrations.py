"""Schema management: Alembic creates the schema the SQLModel tables declare, once."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import registry.store.migrations
from registry.models import VersionCreate
from registry.store.sql import SqlStore
from registry.store.sql.engine import SCHEMA_HEAD, Database, normalise_url
from registry.store.sql.schema import event_counter_table, metadata

from . import workers
from .support import ProcessPool, artifact, register_versions


def _alembic_head() -> str | None:
    scripts = ScriptDirectory(str(Path(registry.store.migrations.__file__).parent))
    return scripts.get_current_head()


def _revision(url: str) -> str | None:
    database = Database(url)
    try:
        return database.schema_revision()
    finally:
        database.dispose()


def test_the_store_expects_the_newest_migration() -> None:
    assert _alembic_head() == SCHEMA_HEAD


def test_a_fresh_database_is_migrated_to_head(fresh_url: str) -> None:
    assert _revision(fresh_url) is None

    SqlStore(fresh_url, actor="tester").close()

    assert _revision(fresh_url) == _alembic_head()


def test_a_fresh_database_starts_the_event_log_at_zero(fresh_url: str) -> None:
    with SqlStore(fresh_url, actor="tester") as store:
        with store.db.read() as conn:
            counter = [tuple(row) for row in conn.execute(sa.select(event_counter_table))]
        store.register("fraud", artifact(b"x"), VersionCreate())

        assert counter == [(1, 0)]
        assert [e.seq for e in store.events()] == [1, 2]


def test_the_migrated_schema_matches_the_declared_tables(fresh_url: str) -> None:
    SqlStore(fresh_url, actor="tester").close()
    engine = sa.create_engine(normalise_url(fresh_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()

    assert diff == []


def test_opening_a_migrated_store_again_does_not_migrate(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqlStore(fresh_url, actor="tester") as store:
        register_versions(store, "fraud", 2)

    def fail() -> None:
        raise AssertionError("the schema was migrated a second time")

    monkeypatch.setattr(Database, "_upgrade", lambda self: fail())
    with SqlStore(fresh_url, actor="tester") as again:
        assert [v.version for v in again.list_versions("fraud")] == [2, 1]


def test_a_store_opened_without_migrate_leaves_a_fresh_database_alone(fresh_url: str) -> None:
    SqlStore(fresh_url, actor="tester", migrate=False).close()

    assert _revision(fresh_url) is None


def test_opening_waits_for_a_writer_holding_a_fresh_sqlite_file(tmp_path: Path) -> None:
    """What a second process sees while the first creates the file: a held lock."""
    path = tmp_path / "fresh.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, holder.execute, ["COMMIT"])
    release.start()
    try:
        with SqlStore(f"sqlite:///{path}", actor="tester") as store:
            store.register("fraud", artifact(b"x"), VersionCreate())
    finally:
        release.join()
        holder.close()

    assert _revision(f"sqlite:///{path}") == _alembic_head()


def test_processes_opening_a_fresh_database_at_once_all_succeed(
    fresh_url: str, backend: str, processes: ProcessPool
) -> None:
    openers = 3

    reports = processes.run_together(workers.open_and_register, [(fresh_url,)] * openers)

    assert [kind for kind, _ in reports] == ["ok"] * openers, reports
    assert sorted(version for _, version in reports) == list(range(1, openers + 1))
    assert _revision(fresh_url) == _alembic_head()
