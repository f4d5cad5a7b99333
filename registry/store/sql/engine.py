"""Engines for SQLite and PostgreSQL, transactions, and error translation.

SQLite: WAL, ``synchronous=NORMAL`` and a busy timeout on every connection;
write transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the
lock instead of deadlocking on a read-to-write upgrade (SQLITE_BUSY with no
wait). PostgreSQL: writers lock the model row (``SELECT … FOR UPDATE``).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from registry.errors import Conflict, InvalidInput, RegistryError, RegistryUnavailable

SCHEMA_HEAD = "0001"
BUSY_TIMEOUT_MS = 30_000
_ADVISORY_LOCK_ID = 0x6D6F64656C  # "model": serialises migrations on PostgreSQL


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


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            raise InvalidInput("in-memory SQLite is not supported: give a file path")
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not pysqlite, decide how a transaction starts.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
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
            raise OperationalError(statement, None, exc) from exc


def translate(exc: SQLAlchemyError) -> RegistryError:
    """Map a SQLAlchemy/DBAPI error to the registry's own types (the one place)."""
    lines = str(getattr(exc, "orig", None) or exc).splitlines()
    message = lines[0] if lines else type(exc).__name__
    if isinstance(exc, IntegrityError):
        return Conflict(f"the change conflicts with stored data: {message}")
    if isinstance(exc, OperationalError) and "locked" in message.lower():
        return RegistryUnavailable(
            f"registry database stayed locked for {BUSY_TIMEOUT_MS // 1000}s: {message}"
        )
    if isinstance(exc, OperationalError | DBAPIError) and (
        getattr(exc, "connection_invalidated", False) or isinstance(exc, OperationalError)
    ):
        return RegistryUnavailable(f"registry database unavailable: {message}")
    return RegistryError(f"registry database error: {message}")


class Database:
    """An engine plus the two kinds of transaction the store uses."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self.dialect = self.engine.dialect.name
        self._writer = self.engine.execution_options(modelreg_write=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise translate(exc) from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        try:
            with self._writer.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise translate(exc) from exc

    def dispose(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------ schema

    def schema_revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise translate(exc) from exc
        except DBAPIError as exc:
            if "alembic_version" in str(exc) and "does not exist" in str(exc):
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
