"""Database errors reach callers as the registry's own types, translated once in engine.py.

SQLite errors are classified by their result code and PostgreSQL's by SQLSTATE; each
mapping is provoked on a real database file or server where that can be done (a full
database through ``max_page_count``, an I/O error through the file-size limit, a
read-only one through ``query_only``: the tests run as root, whom chmod does not stop).
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
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
    SchemaMismatch,
    StorageError,
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
    "postgres": ("SELECT 1 +", None),  # a syntax error
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


def test_a_driver_error_without_a_message_or_code_is_a_plain_registry_error() -> None:
    """Only SQLite sets a code; an error without one says nothing about its cause."""
    translated = translate(OperationalError("SELECT 1", {}, sqlite3.OperationalError()))

    assert type(translated) is RegistryError
    assert str(translated) == "registry database error: OperationalError"


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/x", "sqlite:///:memory:", "sqlite://", "not a url"],
)
def test_an_unsupported_url_is_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput):
        SqlStore(url, actor="tester")


# ---------------------------------------------------------------- SQLite result codes


def _sqlite_error(name: str, code: int) -> sqlite3.Error:
    """A sqlite3 error as the module raises it (only SQLite itself sets the code)."""
    error = sqlite3.OperationalError(f"{name} for the test")
    error.sqlite_errorcode, error.sqlite_errorname = code, name
    return error


@pytest.mark.parametrize(
    ("name", "code", "expected"),
    [
        ("SQLITE_BUSY", 5, RegistryUnavailable),
        ("SQLITE_BUSY_SNAPSHOT", 517, RegistryUnavailable),
        ("SQLITE_LOCKED", 6, RegistryUnavailable),
        ("SQLITE_CANTOPEN", 14, RegistryUnavailable),
        ("SQLITE_IOERR_FSYNC", 1034, RegistryUnavailable),
        ("SQLITE_PROTOCOL", 15, RegistryUnavailable),
        ("SQLITE_FULL", 13, StorageError),
        ("SQLITE_READONLY_DBMOVED", 1032, StorageError),
        ("SQLITE_CORRUPT", 11, StorageError),
        ("SQLITE_NOTADB", 26, StorageError),
        ("SQLITE_ERROR", 1, RegistryError),  # not a missing table or column: no finer code
        ("SQLITE_INTERRUPT", 9, RegistryError),
    ],
)
def test_sqlite_errors_are_classified_by_their_primary_code(
    name: str, code: int, expected: type[RegistryError]
) -> None:
    """Every code, including the two (LOCKED, PROTOCOL) no test here can provoke for real."""
    translated = translate(OperationalError("SELECT 1", {}, _sqlite_error(name, code)))

    assert type(translated) is expected


def _page_count(database: Database) -> int:
    with database.read() as conn:
        return int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())


def test_a_full_sqlite_database_is_a_storage_error(tmp_path: Path) -> None:
    """``max_page_count`` at the current size: the next page SQLite needs is refused
    with SQLITE_FULL, as on a full disk (the limit holds for the pooled connection)."""
    store = SqlStore(f"sqlite:///{tmp_path}/reg.db", actor="tester")
    try:
        with store.db.write() as conn:
            conn.exec_driver_sql(f"PRAGMA max_page_count = {_page_count(store.db)}")
        with pytest.raises(StorageError, match="disk full") as raised:
            register_versions(store, "fraud", 500, tags={"note": "x" * 200})
    finally:
        store.close()

    _assert_translated(raised, OperationalError)
    assert raised.value.__cause__.orig.sqlite_errorname == "SQLITE_FULL"  # type: ignore[union-attr]


def test_a_read_only_sqlite_database_is_a_storage_error(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path}/reg.db", actor="tester")
    try:
        with store.db.write() as conn:
            conn.exec_driver_sql("PRAGMA query_only = ON")  # SQLITE_READONLY on any write
        with pytest.raises(StorageError, match="read-only") as raised:
            register_versions(store, "fraud", 1)
    finally:
        store.close()

    _assert_translated(raised, OperationalError)
    assert raised.value.__cause__.orig.sqlite_errorname == "SQLITE_READONLY"  # type: ignore[union-attr]


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "reg.db").write_bytes(os.urandom(8192))

    with pytest.raises(StorageError, match="not a database") as raised:
        SqlStore(f"sqlite:///{tmp_path}/reg.db", actor="tester")

    _assert_translated(raised, DBAPIError)


def test_a_corrupt_sqlite_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    with SqlStore(f"sqlite:///{path}", actor="tester") as store:
        register_versions(store, "fraud", 3)
    with sqlite3.connect(path) as raw:  # closed: the WAL is checkpointed into the file
        root = raw.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'registered_model'"
        ).fetchone()[0]
        page_size = raw.execute("PRAGMA page_size").fetchone()[0]
    raw.close()
    with path.open("r+b") as file:  # garbage over the table's root page
        file.seek((root - 1) * page_size)
        file.write(b"\xff" * page_size)

    with (
        SqlStore(f"sqlite:///{path}", actor="tester", migrate=False) as store,
        pytest.raises(StorageError, match="damaged") as raised,
    ):
        store.list_models()

    _assert_translated(raised, DBAPIError)
    assert raised.value.__cause__.orig.sqlite_errorname == "SQLITE_CORRUPT"  # type: ignore[union-attr]


@contextmanager
def _file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes fail with EFBIG, which SQLite reports as SQLITE_IOERR
    (for a moment only: the limit holds for every file of this process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills us
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def test_a_disk_io_error_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "reg.db"
    store = SqlStore(f"sqlite:///{path}", actor="tester")
    try:
        register_versions(store, "fraud", 1)
        wal = path.with_name("reg.db-wal")
        with _file_size_limit(wal.stat().st_size), pytest.raises(RegistryUnavailable) as raised:
            register_versions(store, "fraud", 20, tags={"note": "x" * 1000})
        register_versions(store, "fraud", 1)  # and the store carries on afterwards
    finally:
        store.close()

    _assert_translated(raised, OperationalError)
    assert raised.value.__cause__.orig.sqlite_errorname.startswith("SQLITE_IOERR")  # type: ignore[union-attr]


# ---------------------------------------------------------------- schema mismatch

# A table and a column the store reads and writes, dropped behind its back.
_DROP_TABLE = "DROP TABLE model_alias"
_DROP_COLUMN = "ALTER TABLE model_version DROP COLUMN environment"


def _tamper(url: str, statement: str) -> None:
    """Change the schema from another connection, as an old or foreign tool would."""
    database = Database(url)
    try:
        with database.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    finally:
        database.dispose()


def test_a_missing_table_is_a_schema_mismatch(fresh_url: str) -> None:
    with SqlStore(fresh_url, actor="tester") as store:
        register_versions(store, "fraud", 1)
        _tamper(fresh_url, _DROP_TABLE)

        with pytest.raises(SchemaMismatch, match="modelreg init") as raised:
            store.set_aliases("fraud", {"champion": 1})

    _assert_translated(raised, DBAPIError)


def test_a_missing_column_on_read_is_a_schema_mismatch(fresh_url: str) -> None:
    with SqlStore(fresh_url, actor="tester") as store:
        register_versions(store, "fraud", 1)
        _tamper(fresh_url, _DROP_COLUMN)

        with pytest.raises(SchemaMismatch, match="modelreg init") as raised:
            store.get_version("fraud", 1)

    _assert_translated(raised, DBAPIError)


def test_a_missing_column_on_write_is_a_schema_mismatch(fresh_url: str) -> None:
    """On SQLite the driver's INSERT fails with "has no column named"."""
    with SqlStore(fresh_url, actor="tester") as store:
        register_versions(store, "fraud", 1)
        _tamper(fresh_url, _DROP_COLUMN)

        with pytest.raises(SchemaMismatch, match="modelreg init") as raised:
            register_versions(store, "fraud", 1)

    _assert_translated(raised, DBAPIError)


def test_a_fresh_database_still_reads_as_having_no_schema(fresh_url: str) -> None:
    database = Database(fresh_url)
    try:
        assert database.schema_revision() is None
    finally:
        database.dispose()


# ---------------------------------------------------------------- PostgreSQL SQLSTATE


def test_a_full_postgres_disk_is_a_storage_error() -> None:
    """A server out of disk answers SQLSTATE 53100 (not provoked here: built as psycopg
    raises it); psycopg makes it an OperationalError, which is not a lost server."""
    error = OperationalError("INSERT", {}, psycopg.errors.DiskFull("could not extend file"))

    translated = translate(error)

    assert type(translated) is StorageError
    assert "disk full" in str(translated)
