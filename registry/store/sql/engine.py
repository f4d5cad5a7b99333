"""Engines for SQLite and PostgreSQL, transactions, and error translation.

SQLite: WAL, ``synchronous=FULL`` and a busy timeout on every connection;
write transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the
lock instead of deadlocking on a read-to-write upgrade (SQLITE_BUSY with no
wait). PostgreSQL: writers lock the model row (``SELECT … FOR UPDATE``).

``synchronous=FULL`` syncs the WAL at every commit, so a promotion or rollback that
returned survives a power cut; with ``NORMAL`` the last commits before one can vanish
(the file stays consistent). A bulk import may opt out with ``synchronous="normal"``.

Errors are classified by SQLite's result code and PostgreSQL's SQLSTATE, not by their
text, except the one case where SQLite has no finer code (a missing table or column
is plain SQLITE_ERROR).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from registry.errors import (
    Conflict,
    InvalidInput,
    RegistryError,
    RegistryUnavailable,
    SchemaMismatch,
    StorageError,
)

SCHEMA_HEAD = "0009"
BUSY_TIMEOUT_MS = 30_000
# A safety net only: the store's own checkpointer keeps the WAL far below this.
AUTOCHECKPOINT_PAGES = 20_000
_ADVISORY_LOCK_ID = 0x6D6F64656C  # "model": serialises migrations on PostgreSQL
SYNCHRONOUS_MODES = ("full", "normal")


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` and pick the psycopg 3 driver for it."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidInput(f"invalid registry URL {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend not in ("sqlite", "postgresql"):
        raise InvalidInput(f"unsupported registry URL {url!r}: use sqlite:///… or postgresql://…")
    return url


def make_engine(url: str, *, synchronous: str = "full") -> Engine:
    """An engine for ``url``; ``synchronous`` is SQLite's commit durability (see above)."""
    _check_synchronous(synchronous)
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise InvalidInput("in-memory SQLite is not supported: give a file path")
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryUnavailable(
                f"registry folder {folder} cannot be created: {exc.strerror or exc}"
            ) from exc
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine, synchronous)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _check_synchronous(synchronous: str) -> None:
    if synchronous not in SYNCHRONOUS_MODES:
        raise InvalidInput(f"synchronous must be 'full' or 'normal', got {synchronous!r}")


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not pysqlite, decide how a transaction starts.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _ensure_wal(cursor)
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Checkpoints fsync; the store runs them on a background thread (see
        # ``WalCheckpointer``), so commits only fall back to one when it lags far behind.
        cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        statement = (
            "BEGIN IMMEDIATE" if conn.get_execution_options().get("modelreg_write") else "BEGIN"
        )
        # Straight to the driver (this runs once per transaction on the hot path), so its
        # errors are wrapped here the way SQLAlchemy wraps those of statements it runs.
        try:
            conn.connection.driver_connection.execute(statement)  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc


def _ensure_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL once; every later connection only reads the mode.

    The switch needs an exclusive lock, and SQLite does not apply the busy timeout
    to it: while another connection holds a lock on a file not yet in WAL mode
    (the first opener creating the schema), the PRAGMA returns the old mode at
    once. Retry with backoff for as long as the busy timeout would wait.
    """
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        if time.monotonic() >= deadline:
            error = sqlite3.OperationalError("database is locked: could not switch it to WAL mode")
            error.sqlite_errorcode, error.sqlite_errorname = sqlite3.SQLITE_BUSY, "SQLITE_BUSY"
            raise error
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def translate(exc: SQLAlchemyError) -> RegistryError:
    """Map a SQLAlchemy/DBAPI error to the registry's own types (the one place)."""
    orig = getattr(exc, "orig", None)
    lines = str(orig or exc).splitlines()
    message = lines[0] if lines else type(exc).__name__
    if isinstance(exc, IntegrityError):
        return Conflict(f"the change conflicts with stored data: {message}")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return RegistryUnavailable(f"registry database unavailable: {message}")
    if isinstance(orig, sqlite3.Error):
        return _translate_sqlite(orig, message)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _PG_SCHEMA_STATES:
        return _schema_mismatch(message)
    if sqlstate == _PG_DISK_FULL:
        return StorageError(f"registry database refused the write, disk full: {message}")
    if isinstance(exc, OperationalError):  # psycopg: the server is down or unreachable
        return RegistryUnavailable(f"registry database unavailable: {message}")
    return RegistryError(f"registry database error: {message}")


_PG_SCHEMA_STATES = frozenset({"42P01", "42703"})  # undefined_table, undefined_column
_PG_DISK_FULL = "53100"
_SQLITE_UNAVAILABLE = frozenset(
    {sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_PROTOCOL}
)
_SQLITE_DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
# SQLite reports a missing table or column as plain SQLITE_ERROR: only its text tells.
_SQLITE_SCHEMA_TEXTS = ("no such table", "no such column", "has no column")


def _translate_sqlite(orig: sqlite3.Error, message: str) -> RegistryError:
    code = getattr(orig, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None  # extended codes keep it low
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return RegistryUnavailable(
            f"registry database stayed locked for {BUSY_TIMEOUT_MS // 1000}s: {message}"
        )
    if primary in _SQLITE_UNAVAILABLE:
        return RegistryUnavailable(f"registry database unavailable: {message}")
    if primary == sqlite3.SQLITE_FULL:
        return StorageError(f"registry database refused the write, disk full: {message}")
    if primary == sqlite3.SQLITE_READONLY:
        return StorageError(f"registry database is read-only: {message}")
    if primary in _SQLITE_DAMAGED:
        return StorageError(f"registry database file is damaged or not a database: {message}")
    if primary == sqlite3.SQLITE_ERROR and _is_schema_text(message):
        return _schema_mismatch(message)
    return RegistryError(f"registry database error: {message}")


def _is_schema_text(message: str) -> bool:
    return any(text in message for text in _SQLITE_SCHEMA_TEXTS)


def _schema_mismatch(message: str) -> SchemaMismatch:
    return SchemaMismatch(
        f"registry database schema is not the one this modelreg expects ({message}): "
        "run `modelreg init` to create or upgrade it"
    )


def _is_missing_table(orig: object) -> bool:
    """The table does not exist at all (a database the registry never touched)."""
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        return code == sqlite3.SQLITE_ERROR and "no such table" in str(orig)
    return getattr(orig, "sqlstate", None) == "42P01"


class WalCheckpointer:
    """Copies the SQLite write-ahead log back into the database off the commit path.

    A checkpoint fsyncs the WAL and the database file; run from a commit (SQLite's
    auto-checkpoint) it stalls every few dozen commits for as long as the disk takes
    (4 ms typical here, 75 ms under load). This thread polls the WAL's size and runs
    a PASSIVE checkpoint (it never blocks writers or readers) once it has grown.
    """

    POLL_SECONDS = 0.2
    THRESHOLD_BYTES = 4 * 1024 * 1024

    def __init__(self, database: str) -> None:
        self.database = database
        self.wal = f"{database}-wal"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._stop = threading.Event()
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="modelreg-wal-checkpoint", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        thread = self._thread
        self._stop.set()
        if thread is not None and self._pid == os.getpid() and thread.is_alive():
            thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        stop = self._stop
        conn: sqlite3.Connection | None = None
        try:
            while not stop.wait(self.POLL_SECONDS):
                try:
                    if os.path.getsize(self.wal) < self.THRESHOLD_BYTES:
                        continue
                    if conn is None:
                        conn = sqlite3.connect(self.database, timeout=0, isolation_level=None)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except (OSError, sqlite3.Error):
                    continue  # no WAL yet, or busy: the next poll tries again
        finally:
            if conn is not None:
                conn.close()


class _Group:
    """One shared SQLite transaction: the writes that ran in it, and how it ended."""

    __slots__ = ("done", "error", "members")

    def __init__(self) -> None:
        self.members = 0
        self.done = threading.Event()
        self.error: BaseException | None = None


class GroupCommit:
    """Group commit for one process's SQLite writers: concurrent write transactions
    share one ``BEGIN IMMEDIATE … COMMIT``, and so one fsync of the WAL.

    SQLite runs one writer at a time anyway, and at ``synchronous=FULL`` the fsync at
    each commit is most of a small write's time. Here the writers still run one at a
    time, each inside its own SAVEPOINT of the shared transaction (a writer that fails
    rolls back to it and changes nothing, the others are kept). The last writer of a
    burst, the one that finds no other waiting, or the ``MAX_GROUP``-th, commits for
    everyone; each writer returns only once the commit that holds its change is
    durable, and if that commit fails every writer in it gets the error (none of them
    changed anything). Writers see each other's changes in the order they ran, as
    they would in separate transactions. A write inside a write (one thread) is a
    nested SAVEPOINT of the same group. The group's first writer runs without a
    savepoint: when it fails, the transaction holds nothing else and is rolled back.
    """

    MAX_GROUP = 32

    def __init__(self, writer: Engine) -> None:
        self._writer = writer
        self._turn = threading.Lock()  # one writer's statements at a time
        self._count = threading.Lock()
        self._waiting = 0  # writers queued for the turn
        self._conn: Connection | None = None
        self._transaction: Any = None
        self._group: _Group | None = None
        self._mine = threading.local()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        nested: Connection | None = getattr(self._mine, "conn", None)
        if nested is not None:
            with nested.begin_nested():
                yield nested
            return
        with self._count:
            self._waiting += 1
        self._turn.acquire()
        with self._count:
            self._waiting -= 1
        try:
            conn, group = self._join()
            # The group's first writer needs no savepoint: if it fails, nothing else is
            # in the transaction yet, and all of it is rolled back.
            first = group.members == 1
            failure: BaseException | None = None
            self._mine.conn = conn
            try:
                if first:
                    yield conn
                else:
                    with conn.begin_nested():
                        yield conn
            except BaseException as exc:
                failure = exc
                if first:
                    self._discard(group, exc)
                elif not conn.in_transaction():  # the error ended the whole transaction
                    self._abandon(group, exc)
            finally:
                self._mine.conn = None
            if self._group is group and (self._waiting == 0 or group.members >= self.MAX_GROUP):
                self._commit(group)
        finally:
            self._turn.release()
        if failure is not None:
            raise failure
        group.done.wait()
        if group.error is not None:  # the commit that held this change failed
            error = group.error
            raise (translate(error) if isinstance(error, SQLAlchemyError) else error) from error

    def _join(self) -> tuple[Connection, _Group]:
        if self._conn is None or self._group is None:
            conn = self._writer.connect()
            try:
                self._transaction = conn.begin()
            except BaseException:
                conn.close()
                raise
            self._conn, self._group = conn, _Group()
        self._group.members += 1
        return self._conn, self._group

    def _commit(self, group: _Group) -> None:
        conn, transaction = self._conn, self._transaction
        self._conn = self._transaction = self._group = None
        try:
            transaction.commit()
        except BaseException as exc:
            group.error = exc
            with contextlib.suppress(Exception):
                transaction.rollback()
        finally:
            assert conn is not None
            conn.close()
            group.done.set()

    def _discard(self, group: _Group, exc: BaseException) -> None:
        """The first writer failed: roll the transaction back (only its own work is in
        it) and start the next writer on a new one."""
        conn, transaction = self._conn, self._transaction
        self._conn = self._transaction = self._group = None
        group.error = exc
        try:
            if transaction is not None and transaction.is_active:
                transaction.rollback()
        except Exception:  # the connection is broken: the pool gets rid of it
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.invalidate()
        finally:
            if conn is not None:
                conn.close()
            group.done.set()

    def _abandon(self, group: _Group, exc: BaseException) -> None:
        """The group's transaction is gone (SQLite rolled it back): every writer in it
        fails, and the next writer starts a new one."""
        conn = self._conn
        self._conn = self._transaction = self._group = None
        group.error = exc
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
        group.done.set()


class Database:
    """An engine plus the two kinds of transaction the store uses.

    ``group_commit`` (SQLite only; the registry server turns it on) shares one commit
    among concurrent writers of this process: see ``GroupCommit``.
    """

    def __init__(self, url: str, *, synchronous: str = "full", group_commit: bool = False) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, synchronous=synchronous)
        self.dialect = self.engine.dialect.name
        self._writer = self.engine.execution_options(modelreg_write=True)
        self._checkpointer = (
            WalCheckpointer(make_url(self.url).database or "") if self.dialect == "sqlite" else None
        )
        self._groups = (
            GroupCommit(self._writer) if group_commit and self.dialect == "sqlite" else None
        )

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise translate(exc) from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        if self._checkpointer is not None:
            self._checkpointer.ensure_running()
        try:
            if self._groups is not None:
                with self._groups.write() as conn:
                    yield conn
                return
            with self._writer.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise translate(exc) from exc

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()

    # ------------------------------------------------------------ schema

    def schema_revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError as exc:
            if _is_missing_table(exc.orig):
                return None
            raise translate(exc) from exc

    def ensure_schema(self) -> None:
        """Create or upgrade the schema if it is not at head; cheap when it is."""
        if self.schema_revision() == SCHEMA_HEAD:
            return
        with self._migration_lock():
            if self.schema_revision() != SCHEMA_HEAD:
                self._upgrade()

    def _upgrade(self) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option(
            "script_location",
            str(Path(__file__).resolve().parent.parent / "migrations"),
        )
        try:
            with self.engine.begin() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise translate(exc) from exc

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.dialect == "postgresql":
            with self.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_LOCK_ID})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_LOCK_ID})
                    conn.commit()
            return
        database = make_url(self.url).database or ""
        lock_path = f"{database}.migrate.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
