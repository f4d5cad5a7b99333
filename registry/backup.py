"""Backups of the registry's metadata: online, consistent, portable between backends.

``backup(url, dest)`` writes every table of the registry (models, versions, events,
checks, replicas, policies, app releases, tokens, webhooks, …) to one file, while
writers keep writing:

- SQLite: the database is first copied with SQLite's online backup API (a consistent
  page-level snapshot, which writers do not wait on for long), then read from the copy;
- PostgreSQL: every table is read in one ``REPEATABLE READ, READ ONLY`` transaction,
  one snapshot of the whole database.

The file is a tar of ``tables/<table>.jsonl`` (one row per line, values tagged so a
time or a JSON document reads back as itself) and ``manifest.json`` (format, schema
head, source backend, and per table its row count and sha256), with
``manifest.sha256`` last. ``verify`` checks all of it; ``restore`` verifies, then
loads the rows into an empty registry of either backend in one transaction, in
foreign-key order, and moves PostgreSQL's id sequences past the restored ids.

Artifact bytes are not in a backup: they live in the artifact store, backed up on its
own (the requirements ask for the two to be separate).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Table, delete, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from registry.errors import Conflict, InvalidInput, RegistryError
from registry.store.sql import SqlStore
from registry.store.sql.engine import SCHEMA_HEAD, Database, make_engine
from registry.store.sql.schema import event_counter_table, metadata

FORMAT = "modelreg-backup/1"
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.sha256"
TABLES = "tables/"
BATCH = 1000


@dataclass(frozen=True)
class BackupInfo:
    """What a backup holds."""

    path: Path
    schema: str
    created_at: datetime
    source: str  # "sqlite" or "postgresql"
    tables: dict[str, int]  # rows per table

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def backup(url: str, dest: Path) -> BackupInfo:
    """Snapshot the registry at ``url`` into ``dest`` (written whole, then renamed)."""
    database = Database(url)
    try:
        database.ensure_schema()
        source = database.dialect
        with tempfile.TemporaryDirectory(prefix="modelreg-backup-") as work:
            folder = Path(work)
            if source == "sqlite":
                snapshot = folder / "snapshot.db"
                _sqlite_snapshot(make_url(database.url).database or "", snapshot)
                engine = make_engine(f"sqlite:///{snapshot}")
                try:
                    with engine.connect() as conn:
                        tables = _export(conn, folder)
                finally:
                    engine.dispose()
            else:
                with (
                    database.engine.connect().execution_options(
                        isolation_level="REPEATABLE READ", postgresql_readonly=True
                    ) as conn,
                    conn.begin(),
                ):
                    tables = _export(conn, folder)
            created = datetime.now(UTC)
            manifest = {
                "format": FORMAT,
                "schema": SCHEMA_HEAD,
                "created_at": created.isoformat(),
                "source": source,
                "tables": tables,
            }
            _write_tar(folder, manifest, dest)
    finally:
        database.dispose()
    return BackupInfo(
        dest, SCHEMA_HEAD, created, source, {t: int(m["rows"]) for t, m in tables.items()}
    )


def verify(path: Path) -> BackupInfo:
    """Check every member's checksum and row count; ``InvalidInput`` (one line) if not."""
    with _open(path) as archive:
        manifest = _manifest(path, archive)
        for table, meta in manifest["tables"].items():
            digest, rows = hashlib.sha256(), 0
            for line in _lines(path, archive, table):
                digest.update(line)
                rows += 1
            if digest.hexdigest() != meta["sha256"] or rows != meta["rows"]:
                raise InvalidInput(f"backup {path}: table {table} does not match its checksum")
    return _info(path, manifest)


def restore(path: Path, url: str) -> BackupInfo:
    """Load a verified backup into the empty registry at ``url``."""
    info = verify(path)
    store = SqlStore(url, actor="modelreg-restore")
    try:
        db = store.db
        with db.write() as conn:
            _require_empty(conn, url)
            with _open(path) as archive:
                for table in metadata.sorted_tables:
                    if table.name not in info.tables:
                        continue
                    if table is event_counter_table:
                        conn.execute(delete(table))
                    try:
                        _load(conn, table, _lines(path, archive, table.name))
                    except InvalidInput as exc:
                        raise InvalidInput(f"backup {path}: {exc}") from exc
                    except (RegistryError, SQLAlchemyError) as exc:  # a row the database refused
                        raise InvalidInput(
                            f"backup {path}: table {table.name} does not load: {exc}"
                        ) from exc
                if db.dialect == "postgresql":
                    _move_sequences(conn)
    finally:
        store.close()
    return info


# ---------------------------------------------------------------- export


def _sqlite_snapshot(source: str, target: Path) -> None:
    """SQLite's online backup API: a consistent copy while writers go on."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=1024)
    finally:
        dst.close()
        src.close()


def _export(conn: Any, folder: Path) -> dict[str, dict[str, Any]]:
    (folder / TABLES).mkdir()
    found: dict[str, dict[str, Any]] = {}
    for table in metadata.sorted_tables:
        digest, rows = hashlib.sha256(), 0
        order = list(table.primary_key.columns) or list(table.columns)
        query = select(*table.columns).order_by(*order)
        with (folder / TABLES / f"{table.name}.jsonl").open("wb") as out:
            for row in conn.execute(query.execution_options(yield_per=BATCH)):
                line = _encode(row._asdict()) + b"\n"
                out.write(line)
                digest.update(line)
                rows += 1
        found[table.name] = {"rows": rows, "sha256": digest.hexdigest()}
    return found


def _write_tar(folder: Path, manifest: dict[str, Any], dest: Path) -> None:
    body = json.dumps(manifest, sort_keys=True, indent=1).encode()
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    with tarfile.open(partial, "w") as archive:
        _add_bytes(archive, MANIFEST, body)
        for name in sorted(manifest["tables"]):
            archive.add(folder / TABLES / f"{name}.jsonl", arcname=f"{TABLES}{name}.jsonl")
        _add_bytes(archive, MANIFEST_SUM, hashlib.sha256(body).hexdigest().encode())
    with partial.open("rb") as written:
        os.fsync(written.fileno())
    partial.replace(dest)


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size = len(data)
    archive.addfile(member, io.BytesIO(data))


def _encode(row: dict[str, Any]) -> bytes:
    return json.dumps({k: _tag(v) for k, v in row.items()}, separators=(",", ":")).encode()


def _tag(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode()}
    if isinstance(value, dict | list):
        return {"$j": value}
    return value


def _untag(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "$dt":
            return datetime.fromisoformat(inner)
        if tag == "$d":
            return date.fromisoformat(inner)
        if tag == "$b":
            return base64.b64decode(inner)
        if tag == "$j":
            return inner
    return value


# ---------------------------------------------------------------- reading a backup


class _Archive:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.tar = tarfile.open(path, "r:")  # noqa: SIM115 - closed by _open
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InvalidInput(
                f"backup {path} is not readable (corrupt or truncated): {exc}"
            ) from exc
        try:
            self.members = {m.name: m for m in self.tar.getmembers()}
        except (tarfile.TarError, EOFError, OSError) as exc:
            self.tar.close()
            raise InvalidInput(
                f"backup {path} is not readable (corrupt or truncated): {exc}"
            ) from exc

    def read(self, name: str) -> IO[bytes]:
        member = self.members.get(name)
        extracted = self.tar.extractfile(member) if member is not None and member.isfile() else None
        if extracted is None:
            raise InvalidInput(
                f"backup {self.path} has no {name}: truncated, or not a modelreg backup"
            )
        return extracted

    def close(self) -> None:
        self.tar.close()


@contextmanager
def _open(path: Path) -> Iterator[_Archive]:
    archive = _Archive(path)
    try:
        yield archive
    finally:
        archive.close()


def _manifest(path: Path, archive: _Archive) -> dict[str, Any]:
    try:
        body = archive.read(MANIFEST).read()
        expected = archive.read(MANIFEST_SUM).read().decode().strip()
    except (tarfile.TarError, OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"backup {path} is not readable (corrupt or truncated): {exc}") from exc
    if hashlib.sha256(body).hexdigest() != expected:
        raise InvalidInput(f"backup {path}: the manifest does not match its checksum")
    try:
        manifest: dict[str, Any] = json.loads(body)
    except ValueError as exc:
        raise InvalidInput(f"backup {path}: the manifest is not JSON") from exc
    if manifest.get("format") != FORMAT:
        raise InvalidInput(f"backup {path}: unknown format {manifest.get('format')!r}")
    if manifest.get("schema") != SCHEMA_HEAD:
        raise InvalidInput(
            f"backup {path} is of schema {manifest.get('schema')!r}; this modelreg restores "
            f"schema {SCHEMA_HEAD!r} (restore it with the modelreg that wrote it, then upgrade)"
        )
    known = {t.name for t in metadata.sorted_tables}
    tables = manifest.get("tables")
    if not isinstance(tables, dict) or set(tables) != known:
        raise InvalidInput(f"backup {path}: its tables are not this schema's tables")
    names = {f"{TABLES}{t}.jsonl" for t in tables} | {MANIFEST, MANIFEST_SUM}
    if set(archive.members) != names:
        raise InvalidInput(f"backup {path}: unexpected or missing members")
    return manifest


def _lines(path: Path, archive: _Archive, table: str) -> Iterator[bytes]:
    try:
        yield from archive.read(f"{TABLES}{table}.jsonl")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidInput(f"backup {path} is truncated in table {table}: {exc}") from exc


def _info(path: Path, manifest: dict[str, Any]) -> BackupInfo:
    return BackupInfo(
        path=path,
        schema=str(manifest["schema"]),
        created_at=datetime.fromisoformat(manifest["created_at"]),
        source=str(manifest["source"]),
        tables={t: int(m["rows"]) for t, m in manifest["tables"].items()},
    )


# ---------------------------------------------------------------- restore


def _require_empty(conn: Any, url: str) -> None:
    held = {}
    for table in metadata.sorted_tables:
        if table is event_counter_table:
            seq = conn.execute(select(func.max(table.c.seq))).scalar()
            if seq:
                held[table.name] = 1
            continue
        count = conn.execute(select(func.count()).select_from(table)).scalar()
        if count:
            held[table.name] = int(count)
    if held:
        shown = ", ".join(f"{n} {t}" for t, n in sorted(held.items())[:4])
        raise Conflict(
            f"the registry at {_safe(url)} is not empty ({shown}): restore into an empty one"
        )


def _load(conn: Any, table: Table, lines: Iterator[bytes]) -> None:
    batch: list[dict[str, Any]] = []
    kinds = _column_kinds(table)
    for number, line in enumerate(lines, 1):
        try:
            row = {k: _untag(v) for k, v in json.loads(line).items()}
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"row {number} of {table.name} is not readable: {exc}") from exc
        if set(row) != set(kinds):
            raise InvalidInput(f"row {number} of {table.name} has other columns than the table")
        for column, (kind, nullable) in kinds.items():
            value = row[column]
            if value is None:
                if not nullable:
                    raise InvalidInput(f"row {number} of {table.name}: {column} is null")
            elif kind is not None and not _is(value, kind):
                raise InvalidInput(
                    f"row {number} of {table.name}: {column} is not a {kind.__name__}"
                )
        batch.append(row)
        if len(batch) == BATCH:
            conn.execute(insert(table), batch)
            batch = []
    if batch:
        conn.execute(insert(table), batch)


def _column_kinds(table: Table) -> dict[str, tuple[type | None, bool]]:
    """Each column's Python type (None: any, as JSON columns take) and nullability."""
    kinds: dict[str, tuple[type | None, bool]] = {}
    for column in table.columns:
        try:
            kind: type | None = column.type.python_type
        except NotImplementedError:
            kind = None
        if kind in (dict, list):
            kind = None
        kinds[column.name] = (kind, bool(column.nullable))
    return kinds


def _is(value: Any, kind: type) -> bool:
    if kind is bool or kind is int:
        return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def _move_sequences(conn: Any) -> None:
    """PostgreSQL: the id sequences continue after the restored ids."""
    for table in metadata.sorted_tables:
        key = list(table.primary_key.columns)
        if len(key) != 1 or not key[0].autoincrement or str(key[0].type) != "INTEGER":
            continue
        name, column = table.name, key[0].name
        sequence = conn.execute(
            text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": name, "c": column}
        ).scalar()
        if sequence is None:
            continue
        conn.execute(
            text(
                f'SELECT setval(:s, COALESCE((SELECT MAX("{column}") FROM "{name}"), 0) + 1, false)'
            ),
            {"s": sequence},
        )


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
