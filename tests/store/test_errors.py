"""Database errors reach callers as the registry's own types, translated once in engine.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    NoResultFound,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

import registry.store.sql.engine as engine_module
from registry.errors import (
    Conflict,
    InvalidInput,
    RegistryError,
    RegistryUnavailable,
)
from registry.models import VersionCreate
from registry.store.sql import SqlStore
from registry.store.sql.engine import Database, translate
from registry.store.sql.schema import models_table

from .support import artifact, register_versions, snapshot

CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:9/modelreg"


def _assert_translated(
    raised: pytest.ExceptionInfo[RegistryError], cause: type[SQLAlchemyError]
) -> None:
    """Raised ``from`` the SQLAlchemy error, with a one-line message."""
    assert isinstance(raised.value.__cause__, cause)
    assert "\n" not in str(raised.value)
    assert str(raised.value)


def _duplicate_model(database: Database) -> None:
    now = sa.func.now()
    row = {"name": "fraud", "generation": 0, "last_version": 0}
    with database.write() as conn:
        conn.execute(sa.insert(models_table).values(**row, created_at=now, updated_at=now))


def test_a_duplicate_row_is_a_conflict(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)

    with pytest.raises(Conflict, match="conflicts with stored data") as raised:
        _duplicate_model(store.db)

    _assert_translated(raised, IntegrityError)


def test_a_database_locked_past_the_busy_timeout_is_unavailable_on_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader cannot see through an exclusive lock; it waits, then gives up."""
    path = tmp_path / "reg.db"
    SqlStore(f"sqlite:///{path}", actor="tester").close()
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_MS", 100)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=DELETE")  # WAL readers never block; rollback mode does
    holder.execute("BEGIN EXCLUSIVE")
    database = Database(f"sqlite:///{path}")
    try:
        with pytest.raises(RegistryUnavailable, match="locked") as raised, database.read() as conn:
            conn.execute(sa.select(models_table))
    finally:
        holder.rollback()
        holder.close()
        database.dispose()

    _assert_translated(raised, OperationalError)


def test_a_write_locked_past_the_busy_timeout_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "reg.db"
    SqlStore(f"sqlite:///{path}", actor="tester").close()
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_MS", 100)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    store = SqlStore(f"sqlite:///{path}", actor="tester")
    try:
        with pytest.raises(RegistryUnavailable, match="locked") as raised:
            store.register("fraud", artifact(b"x"), VersionCreate())
    finally:
        holder.rollback()
        holder.close()
        store.close()

    _assert_translated(raised, OperationalError)


def test_a_postgres_server_that_is_down_is_unavailable() -> None:
    with pytest.raises(RegistryUnavailable, match="unavailable") as raised:
        SqlStore(CLOSED_PORT_URL, actor="tester")

    _assert_translated(raised, OperationalError)


def test_a_sqlite_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "reg.db").mkdir()  # a directory where the database file should be

    with pytest.raises(RegistryUnavailable, match="unavailable") as raised:
        SqlStore(f"sqlite:///{tmp_path}/reg.db", actor="tester")

    _assert_translated(raised, OperationalError)


def test_a_connection_lost_mid_call_is_unavailable(store: SqlStore) -> None:
    with pytest.raises(RegistryUnavailable) as raised, store.db.read() as conn:
        conn.connection.dbapi_connection.close()  # type: ignore[union-attr]
        conn.execute(sa.select(models_table))

    _assert_translated(raised, DBAPIError)
    assert raised.value.__cause__.connection_invalidated  # type: ignore[union-attr]


def test_the_store_recovers_after_a_lost_connection(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)
    with pytest.raises(RegistryUnavailable), store.db.read() as conn:
        conn.connection.dbapi_connection.close()  # type: ignore[union-attr]
        conn.execute(sa.select(models_table))

    assert store.get_model("fraud").latest_version == 1


# Statements the driver refuses with a ProgrammingError (not a lost connection).
PROGRAMMING_ERRORS = {
    "sqlite": ("SELECT ?", ()),  # one placeholder, no parameters
    "postgres": ("SELECT * FROM no_such_table", None),
}


def test_a_driver_programming_error_is_a_plain_registry_error(
    store: SqlStore, backend: str
) -> None:
    statement, parameters = PROGRAMMING_ERRORS[backend]

    with pytest.raises(RegistryError, match="database error") as raised, store.db.read() as conn:
        conn.exec_driver_sql(statement, parameters)

    assert type(raised.value) is RegistryError
    _assert_translated(raised, ProgrammingError)


def test_a_non_driver_sqlalchemy_error_is_a_plain_registry_error(store: SqlStore) -> None:
    with pytest.raises(RegistryError) as raised, store.db.read() as conn:
        conn.execute(sa.select(models_table)).one()

    assert type(raised.value) is RegistryError
    _assert_translated(raised, NoResultFound)


def test_a_failed_write_changes_nothing(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)
    before = snapshot(store)

    with pytest.raises(Conflict):
        _duplicate_model(store.db)

    assert snapshot(store) == before


def test_a_driver_error_without_a_message_is_still_translated() -> None:
    error = OperationalError("SELECT 1", {}, sqlite3.OperationalError())

    assert isinstance(translate(error), RegistryUnavailable)


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/x", "sqlite:///:memory:", "sqlite://", "not a url"],
)
def test_an_unsupported_url_is_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput):
        SqlStore(url, actor="tester")
