"""The durable outbox: registrations that could not reach the registry, kept until delivered.

When the registry is down, a training run must neither lose its result nor crash:
it writes the registration (artifact reference + metadata + idempotency key) into
a small SQLite file of its own, committed with ``synchronous=FULL`` (fsynced)
before ``enqueue`` returns. ``drain`` later delivers each entry with its
idempotency key, so a replay (a crash after the registry committed but before
the outbox noted it, or two drainers racing) returns the version already
created instead of registering it twice.

Entries move ``pending`` → ``delivered`` (kept for the audit trail, with the
version they became) or ``rejected`` (the registry refused them for good:
invalid metadata, or a key reused for other bytes). Stdlib ``sqlite3`` only:
this module is imported by the CLI and must stay light.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import Conflict, RegistryError, RegistryUnavailable
from registry.models import ArtifactRef, VersionCreate, check_model_name
from registry.store.base import RegistryStore

if TYPE_CHECKING:
    from registry.config import Settings

# How long a drainer owns an entry it is delivering; a drainer that died holding
# one gives it up after this, and the idempotency key makes the second delivery safe.
CLAIM_SECONDS = 120.0
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    artifact TEXT NOT NULL,
    meta TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    enqueued_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    claimed_by TEXT,
    claimed_until REAL,
    version INTEGER,
    delivered_at TEXT
);
CREATE INDEX IF NOT EXISTS ix_registrations_state ON registrations (state, seq);
"""


@dataclass(frozen=True)
class QueuedRegistration:
    """One registration waiting in (or delivered from) the outbox."""

    key: str
    name: str
    artifact: ArtifactRef
    meta: VersionCreate
    state: str
    enqueued_at: datetime
    attempts: int = 0
    last_error: str | None = None
    version: int | None = None


@dataclass
class DrainReport:
    """What one ``drain`` call did.

    ``delivered``: (key, model, version) registered (or found already registered);
    ``failed``: (key, error) not delivered — rejected for good, or the one that met
    an unreachable registry; ``unavailable``: why draining stopped early, if it did;
    ``remaining``: entries still pending afterwards.
    """

    delivered: list[tuple[str, str, int]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unavailable: str | None = None
    remaining: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """A durable local queue of registrations, in its own SQLite file at ``path``."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        created = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
        if created:
            _fsync_dir(self.path.parent)

    # ------------------------------------------------------------ writing

    def enqueue(self, name: str, artifact: ArtifactRef, meta: VersionCreate) -> str:
        """Queue a registration; return its idempotency key once it is on disk.

        A key is assigned when ``meta`` has none. Enqueuing a key again for the same
        bytes is a no-op that keeps the first entry (as the registry keeps the first
        registration of a key: a re-run of a queued run changes only its run id); for
        other bytes, ``Conflict``.
        """
        check_model_name(name)
        meta = VersionCreate.parse(meta)
        if meta.idempotency_key is None:
            meta = meta.model_copy(update={"idempotency_key": f"outbox-{uuid.uuid4().hex}"})
        key = meta.idempotency_key
        assert key is not None
        artifact_json = artifact.model_dump_json()
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT name, artifact FROM registrations WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                if tuple(row) != (name, artifact_json):
                    raise Conflict(f"outbox key {key!r} is already queued for other bytes")
                return key
            conn.execute(
                "INSERT INTO registrations (key, name, artifact, meta, enqueued_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, name, artifact_json, meta.model_dump_json(), _now().isoformat()),
            )
        return key

    # ------------------------------------------------------------ reading

    def pending(self) -> list[QueuedRegistration]:
        """Entries not yet delivered, oldest first."""
        return self._entries("pending")

    def entries(self) -> list[QueuedRegistration]:
        """Every entry (pending, delivered, rejected), oldest first."""
        return self._entries(None)

    def get(self, key: str) -> QueuedRegistration | None:
        with self._connect() as conn:
            row = conn.execute(f"{_SELECT} WHERE key = ?", (key,)).fetchone()
        return None if row is None else _entry(row)

    def _entries(self, state: str | None) -> list[QueuedRegistration]:
        with self._connect() as conn:
            if state is None:
                rows = conn.execute(f"{_SELECT} ORDER BY seq").fetchall()
            else:
                rows = conn.execute(f"{_SELECT} WHERE state = ? ORDER BY seq", (state,)).fetchall()
        return [_entry(r) for r in rows]

    # ------------------------------------------------------------ delivery

    def drain(self, store: RegistryStore, *, limit: int | None = None) -> DrainReport:
        """Deliver pending entries in order; stop at the first unreachable-registry error.

        Safe with several drainers at once: each entry is claimed before delivery,
        and the idempotency key makes a second delivery return the same version.
        """
        report = DrainReport()
        drainer = uuid.uuid4().hex
        done = 0
        while limit is None or done < limit:
            entry = self._claim(drainer)
            if entry is None:
                break
            done += 1
            try:
                version = store.register(entry.name, entry.artifact, entry.meta)
            except RegistryUnavailable as exc:
                self._release(entry.key, drainer, str(exc))
                report.failed.append((entry.key, str(exc)))
                report.unavailable = str(exc)
                break
            except RegistryError as exc:
                # Invalid metadata, or the key already names other bytes: retrying cannot help.
                self._finish(entry.key, state="rejected", error=str(exc))
                report.failed.append((entry.key, str(exc)))
                continue
            self._finish(entry.key, state="delivered", version=version.version)
            report.delivered.append((entry.key, entry.name, version.version))
        report.remaining = len(self.pending())
        return report

    def _claim(self, drainer: str) -> QueuedRegistration | None:
        now = time.time()
        with self._transaction() as conn:
            row = conn.execute(
                f"{_SELECT} WHERE state = 'pending' AND (claimed_until IS NULL OR"
                " claimed_until < ?) ORDER BY seq LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE registrations SET claimed_by = ?, claimed_until = ?,"
                " attempts = attempts + 1 WHERE key = ?",
                (drainer, now + CLAIM_SECONDS, row[0]),
            )
        return _entry(row)

    def _release(self, key: str, drainer: str, error: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE registrations SET claimed_by = NULL, claimed_until = NULL,"
                " last_error = ? WHERE key = ? AND claimed_by = ?",
                (error, key, drainer),
            )

    def _finish(
        self,
        key: str,
        *,
        state: str,
        version: int | None = None,
        error: str | None = None,
    ) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE registrations SET state = ?, version = ?, last_error = ?,"
                " delivered_at = ?, claimed_by = NULL, claimed_until = NULL"
                " WHERE key = ? AND state = 'pending'",
                (state, version, error, _now().isoformat(), key),
            )

    # ------------------------------------------------------------ sqlite

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            # WAL + FULL: every commit is fsynced to the log before it returns.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            yield conn
        except sqlite3.DatabaseError as exc:  # locked past the timeout, unreadable, disk I/O
            raise RegistryUnavailable(f"outbox {self.path} unavailable: {exc}") from exc
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")


_SELECT = (
    "SELECT key, name, artifact, meta, state, enqueued_at, attempts, last_error, version"
    " FROM registrations"
)


def _entry(row: tuple[object, ...]) -> QueuedRegistration:
    key, name, artifact, meta, state, enqueued_at, attempts, last_error, version = row
    return QueuedRegistration(
        key=str(key),
        name=str(name),
        artifact=ArtifactRef.model_validate(json.loads(str(artifact))),
        meta=VersionCreate.model_validate(json.loads(str(meta))),
        state=str(state),
        enqueued_at=datetime.fromisoformat(str(enqueued_at)),
        attempts=int(str(attempts)),
        last_error=None if last_error is None else str(last_error),
        version=None if version is None else int(str(version)),
    )


def _fsync_dir(path: Path) -> None:
    """Make a newly created file's directory entry durable too."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def drain_pending(settings: Settings) -> DrainReport:
    """Deliver what the outbox of ``settings`` holds, if the registry can be reached;
    a registry still down leaves every entry queued (``unavailable`` says why)."""
    outbox = Outbox(settings.outbox_path)
    pending = len(outbox.pending())
    if not pending:
        return DrainReport()
    try:
        with settings.connect() as store:
            return outbox.drain(store)
    except RegistryUnavailable as exc:
        return DrainReport(unavailable=str(exc), remaining=len(outbox.pending()))
