"""The backup shelf: the last N registry backups, kept beside the artifacts.

A shelf lives under the artifact root, at the non-content prefix ``backups/``
(``<root>/backups/`` for a folder, ``s3://bucket/prefix/backups/`` for S3): the
artifact stores address content by sha256, and their garbage collector ignores every
key that is not a content key, so nothing here is mistaken for an artifact. Each
entry is named ``registry-<UTC %Y%m%dT%H%M%SZ>-seq<N>.tar`` from the backup's own
manifest time and the registry's event sequence number it holds, so the name says
what a restore gives back, and a listing sorts without opening anything.

Nothing half-written is ever listed: a folder entry is written beside its final
name, read back, checked and renamed; an S3 entry is uploaded to ``backups/tmp/``,
read back and checked, and only then copied to its name. Each entry's size and
sha256 are kept with it (S3 object metadata; a ``.sha256`` file in a folder), and a
download is checked against them before anyone restores it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tarfile
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from registry.artifacts import LocalArtifactStore, open_store
from registry.artifacts.files import (
    Readable,
    file_digest,
    remove_file,
    stream_digest,
    write_verified,
)

# The S3 artifact store's botocore translation and body wrapper, reused as they are
# (that module imports boto3 only when a client is made).
from registry.artifacts.s3 import _MISSING_CODES, _error_code, _translated, _TranslatedBody
from registry.errors import ArtifactError, ChecksumMismatch, Conflict, InvalidInput, NotFound
from registry.models import ArtifactRef

PREFIX = "backups"
STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"^registry-(\d{8}T\d{6}Z)-seq(\d+)\.tar$")
_COUNTER_MEMBER = "tables/event_counter.jsonl"


class ShelfEntry(BaseModel):
    """One backup on the shelf."""

    model_config = ConfigDict(frozen=True)

    name: str
    uri: str
    size: int
    sha256: str
    created_at: datetime  # when the backup was taken (UTC, to the second)
    seq: int  # the registry's newest event sequence number in the backup


def entry_name(created_at: datetime, seq: int) -> str:
    return f"registry-{created_at.astimezone(UTC).strftime(STAMP)}-seq{seq}.tar"


def parse_name(name: str) -> tuple[datetime, int] | None:
    """(taken at, seq) of a shelf entry's name, or None if ``name`` is not one."""
    match = _NAME.match(name)
    if match is None:
        return None
    taken = datetime.strptime(match.group(1), STAMP).replace(tzinfo=UTC)
    return taken, int(match.group(2))


def is_entry_name(name: str) -> bool:
    return parse_name(name) is not None


def backup_seq(path: Path) -> int:
    """The registry's event sequence number a (verified) backup file holds."""
    try:
        with tarfile.open(path, "r:") as archive:
            member = archive.extractfile(_COUNTER_MEMBER)
            lines = member.read().splitlines() if member is not None else []
    except (tarfile.TarError, KeyError, OSError) as exc:
        raise InvalidInput(f"backup {path} has no readable event counter: {exc}") from exc
    seqs = [int(json.loads(line)["seq"]) for line in lines if line.strip()]
    return max(seqs, default=0)


class Shelf(ABC):
    """put / list / get / prune; subclasses move bytes, this class holds the rules."""

    uri: str  # where the shelf is: a folder path or s3://bucket/prefix/backups

    def put(self, path: Path) -> ShelfEntry:
        """Shelve a backup file (checked first), named from its own manifest.

        Shelving the same file again is a no-op; another backup under a taken name
        (same second, same seq) is a ``Conflict``.
        """
        from registry.backup import verify

        info = verify(path)
        seq = backup_seq(path)
        name = entry_name(info.created_at, seq)
        sha256, size = _digest(path)
        held = self._stat(name)
        if held is not None:
            if held.sha256 == sha256 and held.size == size:
                return held
            raise Conflict(f"{self.uri} already holds another backup named {name}")
        self._store(path, name, sha256, size)
        stored = self._stat(name)
        if stored is None or (stored.sha256, stored.size) != (sha256, size):
            with suppress(ArtifactError):
                self._delete(name)
            raise ChecksumMismatch(f"backup {name} did not land intact in {self.uri}")
        return stored

    def entries(self) -> list[ShelfEntry]:
        """Every entry, newest first (by time taken, then seq)."""
        entries = [e for e in (self._stat(n) for n in self._names()) if e is not None]
        return sorted(entries, key=lambda e: (e.created_at, e.seq, e.name), reverse=True)

    def latest(self) -> ShelfEntry:
        entries = self.entries()
        if not entries:
            raise NotFound(f"no backups on the shelf at {self.uri}")
        return entries[0]

    def entry(self, name: str) -> ShelfEntry:
        if not is_entry_name(name):
            raise InvalidInput(
                f"{name!r} is not a shelf entry name (registry-YYYYMMDDTHHMMSSZ-seqN.tar)"
            )
        found = self._stat(name)
        if found is None:
            raise NotFound(f"no backup {name} on the shelf at {self.uri}")
        return found

    def get(self, name: str, dest: Path) -> ShelfEntry:
        """Download entry ``name`` to ``dest``; ``ChecksumMismatch`` if the stored bytes
        are not the ones shelved (``dest`` is then left as it was)."""
        found = self.entry(name)
        ref = _ref(found.uri, found.sha256, found.size)
        try:
            with self._open(name) as stream:
                write_verified(stream, ref, dest, found.uri)
        except ChecksumMismatch as exc:
            raise ChecksumMismatch(
                f"backup {name} on the shelf at {self.uri} is corrupt or was changed: "
                f"its bytes do not match the size and sha256 it was shelved with ({exc})"
            ) from exc
        return found

    def prune(self, keep: int, *, protect: str) -> list[str]:
        """Delete all but the newest ``keep`` entries, never ``protect`` (the backup just
        shelved); returns the names deleted, oldest last."""
        if keep < 1:
            raise InvalidInput(f"keep must be at least 1, not {keep}")
        if self._stat(protect) is None:
            raise NotFound(f"backup {protect} is not on the shelf at {self.uri}: nothing pruned")
        entries = self.entries()
        kept = {e.name for e in entries[:keep]} | {protect}
        doomed = [e.name for e in entries if e.name not in kept]
        for name in doomed:
            self._delete(name)
        return doomed

    # ------------------------------------------------------------ what a backend does

    @abstractmethod
    def _names(self) -> list[str]:
        """The entry names present (anything else under the prefix is not listed)."""

    @abstractmethod
    def _stat(self, name: str) -> ShelfEntry | None:
        """The entry, if it is complete (its bytes and its checksum are both there)."""

    @abstractmethod
    def _store(self, path: Path, name: str, sha256: str, size: int) -> None:
        """Land ``path`` under ``name``, checked, never visible half-written."""

    @abstractmethod
    @contextmanager
    def _open(self, name: str) -> Iterator[Readable]: ...

    @abstractmethod
    def _delete(self, name: str) -> None: ...


def _digest(path: Path) -> tuple[str, int]:
    try:
        return file_digest(path)
    except OSError as exc:
        raise ArtifactError(f"could not read backup {path}: {exc}") from exc


def _ref(uri: str, sha256: str, size: int) -> ArtifactRef:
    """What ``write_verified`` checks a landing against."""
    return ArtifactRef(uri=uri, sha256=sha256, size=size, format="tar")


def _entry(name: str, uri: str, size: int, sha256: str) -> ShelfEntry | None:
    parsed = parse_name(name)
    if parsed is None:
        return None
    taken, seq = parsed
    return ShelfEntry(name=name, uri=uri, size=size, sha256=sha256, created_at=taken, seq=seq)


# ---------------------------------------------------------------- a folder


class FolderShelf(Shelf):
    """``<root>/backups/<name>`` with ``<name>.sha256`` beside it (written first)."""

    def __init__(self, artifact_root: Path) -> None:
        self.folder = Path(artifact_root) / PREFIX
        self.uri = str(self.folder)

    def _names(self) -> list[str]:
        try:
            return [p.name for p in self.folder.iterdir() if is_entry_name(p.name) and p.is_file()]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ArtifactError(f"could not list {self.folder}: {exc}") from exc

    def _stat(self, name: str) -> ShelfEntry | None:
        path = self.folder / name
        try:
            size = path.stat().st_size
            sha256 = self._checksum(name).read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ArtifactError(f"could not read {path}: {exc}") from exc
        return _entry(name, path.as_uri(), size, sha256)

    def _store(self, path: Path, name: str, sha256: str, size: int) -> None:
        # The checksum first: an entry is listed once its tar is renamed into place,
        # and then its checksum is already there to check it against.
        note = f"{sha256}\n".encode()
        note_ref = _ref(self.uri, hashlib.sha256(note).hexdigest(), len(note))
        write_verified(io.BytesIO(note), note_ref, self._checksum(name), self.uri)
        try:
            with path.open("rb") as source:
                write_verified(source, _ref(str(path), sha256, size), self.folder / name, self.uri)
        except BaseException as exc:
            with suppress(ArtifactError):
                remove_file(self._checksum(name), f"the checksum of backup {name}")
            if isinstance(exc, OSError):
                raise ArtifactError(f"could not read backup {path}: {exc}") from exc
            raise

    def _checksum(self, name: str) -> Path:
        return self.folder / f"{name}.sha256"

    @contextmanager
    def _open(self, name: str) -> Iterator[Readable]:
        try:
            handle = (self.folder / name).open("rb")
        except FileNotFoundError as exc:
            raise NotFound(f"no backup {name} on the shelf at {self.uri}") from exc
        except OSError as exc:
            raise ArtifactError(f"could not read {self.folder / name}: {exc}") from exc
        with handle:
            yield handle

    def _delete(self, name: str) -> None:
        # The tar first: a checksum left alone is never listed.
        remove_file(self.folder / name, f"backup {name}")
        remove_file(self._checksum(name), f"the checksum of backup {name}")


# ---------------------------------------------------------------- S3


class S3Shelf(Shelf):
    """``s3://bucket/prefix/backups/<name>`` with its sha256 in the object's metadata."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix}/{PREFIX}" if prefix else PREFIX
        self.uri = f"s3://{bucket}/{self.prefix}"

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def _names(self) -> list[str]:
        names: list[str] = []
        with _translated(f"list {self.uri}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/", Delimiter="/"
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = str(item["Key"]).rsplit("/", 1)[-1]
                    if is_entry_name(name):
                        names.append(name)
        return names

    def _stat(self, name: str) -> ShelfEntry | None:
        from botocore.exceptions import ClientError

        with _translated(f"head {self.uri}/{name}"):
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(name))
            except ClientError as exc:
                if _is_missing(exc):
                    return None
                raise
        sha256 = str(head.get("Metadata", {}).get("sha256", ""))
        if not sha256:
            return None  # not put by a shelf: never listed, never restored
        return _entry(name, f"{self.uri}/{name}", int(head["ContentLength"]), sha256)

    def _store(self, path: Path, name: str, sha256: str, size: int) -> None:
        temp = f"{self.prefix}/tmp/{uuid.uuid4().hex}.partial"
        what = f"upload {path} to {self.uri}/{name}"
        try:
            with _translated(what), path.open("rb") as source:
                self.client.upload_fileobj(
                    source, self.bucket, temp, ExtraArgs={"Metadata": {"sha256": sha256}}
                )
            self._check_temp(temp, name, sha256, size)
            with _translated(what):
                self.client.copy(
                    {"Bucket": self.bucket, "Key": temp},
                    self.bucket,
                    self._key(name),
                    ExtraArgs={"Metadata": {"sha256": sha256}, "MetadataDirective": "REPLACE"},
                )
        except OSError as exc:
            raise ArtifactError(f"could not read backup {path}: {exc}") from exc
        finally:
            # Best effort: a failed delete must not hide the error that got us here.
            with suppress(ArtifactError), _translated(f"delete {temp}"):
                self.client.delete_object(Bucket=self.bucket, Key=temp)

    def _check_temp(self, temp: str, name: str, sha256: str, size: int) -> None:
        """The read-back: what S3 holds, hashed (never an ETag)."""
        with _translated(f"read back {self.uri}/{name}"):
            body = self.client.get_object(Bucket=self.bucket, Key=temp)["Body"]
            try:
                got, length = stream_digest(body)
            finally:
                body.close()
        if (got, length) != (sha256, size):
            raise ChecksumMismatch(
                f"backup {name} did not reach {self.uri} intact: {length} bytes with sha256 "
                f"{got[:12]} stored, {size} with {sha256[:12]} sent"
            )

    @contextmanager
    def _open(self, name: str) -> Iterator[Readable]:
        with _translated(f"read {self.uri}/{name}"):
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
        try:
            yield _TranslatedBody(body, f"read {self.uri}/{name}")
        finally:
            body.close()

    def _delete(self, name: str) -> None:
        with _translated(f"delete {self.uri}/{name}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(name))


def _is_missing(exc: Any) -> bool:
    return _error_code(exc) in _MISSING_CODES


# ---------------------------------------------------------------- opening one


def open_shelf(artifact_root: str, **options: Any) -> Shelf:
    """The shelf under an artifact root (a folder, ``file://…`` or ``s3://bucket/prefix``);
    ``options`` go to the S3 client as they do for the artifact store (``endpoint_url``)."""
    store = open_store(artifact_root, **options)
    if isinstance(store, LocalArtifactStore):
        return FolderShelf(store.root)
    from registry.artifacts.s3 import S3ArtifactStore

    assert isinstance(store, S3ArtifactStore)
    return S3Shelf(store.client, store.bucket, store.prefix)


# ---------------------------------------------------------------- the steps


def take(registry_url: str, folder: Path) -> Path:
    """A fresh backup of the registry at ``registry_url``, as a file in a new folder
    under ``folder`` (the caller removes that folder; nothing is left if this fails)."""
    from registry.backup import backup

    if registry_url.startswith(("http://", "https://")):
        raise InvalidInput(
            "a backup reads the registry's database: give sqlite:///… or postgresql://…, "
            "not the server's URL"
        )
    Path(folder).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="backup-", dir=folder))
    try:
        return backup(registry_url, work / "registry.tar").path
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def fetch(shelf: Shelf, name: str | None, folder: Path) -> tuple[Path, ShelfEntry]:
    """Download entry ``name`` (None: the newest) into ``folder``, checked."""
    found = shelf.latest() if name is None else shelf.entry(name)
    dest = Path(folder) / found.name
    return dest, shelf.get(found.name, dest)


class BackupRun(BaseModel):
    """What one shelving run did: the backup it shelved and what it pruned."""

    model_config = ConfigDict(frozen=True)

    name: str
    uri: str
    size: int
    seq: int
    sha256: str
    pruned: tuple[str, ...] = ()

    @classmethod
    def of(cls, entry: ShelfEntry, pruned: list[str]) -> BackupRun:
        return cls(
            name=entry.name,
            uri=entry.uri,
            size=entry.size,
            seq=entry.seq,
            sha256=entry.sha256,
            pruned=tuple(pruned),
        )

    def summary(self) -> str:
        line = f"shelved {self.uri} ({self.size:,} bytes, seq {self.seq})"
        if self.pruned:
            line += f"; pruned {len(self.pruned)}: {', '.join(self.pruned)}"
        return line
