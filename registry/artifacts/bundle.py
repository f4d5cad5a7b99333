"""Bundles: a folder of files (an MLflow model directory) as one verifiable artifact.

Every file is stored content-addressed like any artifact, and a manifest lists them:
canonical JSON (sorted keys, no spaces), files sorted by path,
``{"bundle":1,"files":[{"path":"MLmodel","sha256":"…","size":123},…]}``. The manifest
is stored content-addressed too, and its reference, with ``format=BUNDLE_FORMAT``, is
the version's one ``ArtifactRef``: the same folder always gives the same digest.

``ArtifactStore.verify`` and ``copy_from`` hand a bundle reference to ``verify_bundle``
and ``copy_bundle`` here, so replication and verification treat bundles as they treat
single artifacts. ``ingest_source`` reads an MLflow ``source`` (a local folder or file
inside the allowed roots, or an S3 prefix) into a bundle, or says it cannot (None).
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
import os
import stat
import tempfile
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import unquote, urlsplit

from registry.artifacts.base import BUNDLE_FORMAT, ArtifactStore
from registry.artifacts.files import CHUNK, check_digest, stream_digest
from registry.errors import ArtifactError, ChecksumMismatch, InvalidInput, NotFound
from registry.models import ArtifactRef

__all__ = [
    "BUNDLE_FORMAT",
    "FILE_FORMAT",
    "MAX_BUNDLE_BYTES",
    "MAX_FILES",
    "MAX_MANIFEST_BYTES",
    "MAX_PATH_BYTES",
    "BundleFile",
    "Entry",
    "Manifest",
    "check_path",
    "copy_bundle",
    "ingest_source",
    "listing",
    "member",
    "parse_manifest",
    "put_bundle",
    "read_manifest",
    "verify_bundle",
]

FILE_FORMAT = "file"  # the format of one file of a bundle (and of the manifest object)
MAX_FILES = 4096
MAX_PATH_BYTES = 1024
# Every manifest within MAX_FILES and MAX_PATH_BYTES fits (~1.1 KiB a file at most).
MAX_MANIFEST_BYTES = 8 * 1024 * 1024
MAX_BUNDLE_BYTES = 10 * 1024**3  # what ingest_source and put_bundle store, by default


class BundleFile(NamedTuple):
    """One file of a bundle, as its manifest lists it."""

    path: str
    sha256: str
    size: int


class Entry(NamedTuple):
    """One line of a folder's listing: a name in that folder, as MLflow lists artifacts."""

    path: str
    is_dir: bool
    size: int | None


@dataclass(frozen=True)
class Manifest:
    """A bundle's files, sorted by path, and where the store that holds them puts each."""

    files: tuple[BundleFile, ...]
    uri_for: Callable[[str], str] = field(compare=False, repr=False)


class _SourceBroken(ArtifactError):
    """A source file could not be read to the end (it vanished, changed or failed)."""


class _Caps(NamedTuple):
    files: int
    bytes: int

    def check(self, files: int, size: int) -> None:
        if files > self.files:
            raise InvalidInput(f"source has more than {self.files} files (the bundle file cap)")
        if size > self.bytes:
            raise InvalidInput(f"source holds more than {self.bytes} bytes (the bundle size cap)")


# ---------------------------------------------------------------- the manifest


def check_path(path: object) -> str:
    """A file's path in a bundle: relative POSIX, no ``.``/``..``/empty segments, no
    backslash or control character, at most ``MAX_PATH_BYTES``; else ``InvalidInput``."""
    if not isinstance(path, str) or not path:
        raise InvalidInput(f"bundle path must be a non-empty string, got {path!r}")
    if "\\" in path or any(unicodedata.category(ch) in {"Cc", "Cs"} for ch in path):
        raise InvalidInput(f"bundle path {path!r} has a backslash, control or invalid character")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise InvalidInput(f"bundle path {path[:40]!r}… is over {MAX_PATH_BYTES} bytes")
    if path.startswith("/"):
        raise InvalidInput(f"bundle path {path!r} is absolute")
    if any(segment in {"", ".", ".."} for segment in path.split("/")):
        raise InvalidInput(f"bundle path {path!r} has an empty, '.' or '..' segment")
    return path


def parse_manifest(data: bytes) -> tuple[BundleFile, ...]:
    """The files a manifest lists; ``InvalidInput`` unless it is exactly the canonical
    form ``put_bundle`` writes (so one set of files has one manifest digest)."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise InvalidInput(f"bundle manifest is over {MAX_MANIFEST_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidInput(f"bundle manifest is not UTF-8 JSON: {exc}") from exc
    if not isinstance(doc, dict) or set(doc) != {"bundle", "files"}:
        raise InvalidInput('bundle manifest must be an object with exactly "bundle" and "files"')
    if type(doc["bundle"]) is not int or doc["bundle"] != 1:
        raise InvalidInput(f"unsupported bundle manifest version {doc['bundle']!r}")
    if not isinstance(doc["files"], list):
        raise InvalidInput('bundle manifest "files" must be a list')
    files = tuple(_parse_file(item) for item in doc["files"])
    _check_files(files)
    if _encode(files) != data:
        raise InvalidInput("bundle manifest is not in canonical form")
    return files


def _parse_file(item: object) -> BundleFile:
    if not isinstance(item, dict) or set(item) != {"path", "sha256", "size"}:
        raise InvalidInput('a bundle file must be an object with exactly "path", "sha256", "size"')
    sha256, size = item["sha256"], item["size"]
    if not isinstance(sha256, str) or len(sha256) != 64 or sha256.strip("0123456789abcdef"):
        raise InvalidInput(f"bundle file {item['path']!r} has an invalid sha256 {sha256!r}")
    if type(size) is not int or size < 0:
        raise InvalidInput(f"bundle file {item['path']!r} has an invalid size {size!r}")
    return BundleFile(check_path(item["path"]), sha256, size)


def _check_files(files: Sequence[BundleFile]) -> None:
    if not files:
        raise InvalidInput("a bundle needs at least one file")
    if len(files) > MAX_FILES:
        raise InvalidInput(f"a bundle has at most {MAX_FILES} files, got {len(files)}")
    paths = [f.path for f in files]
    for before, after in pairwise(paths):
        if after == before:
            raise InvalidInput(f"bundle path {after!r} appears twice")
        if after < before:
            raise InvalidInput(f"bundle files are not sorted by path ({before!r}, {after!r})")
    names = set(paths)
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if (folder := "/".join(parts[:depth])) in names:
                raise InvalidInput(f"bundle path {folder!r} is both a file and a folder")


def _encode(files: Sequence[BundleFile]) -> bytes:
    doc = {"bundle": 1, "files": [f._asdict() for f in files]}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def read_manifest(store: ArtifactStore, ref: ArtifactRef) -> Manifest:
    """Read a bundle's manifest from ``store``, checking size and sha256 against ``ref``
    before parsing: ``ChecksumMismatch`` if tampered or truncated, ``ArtifactError`` if
    missing, ``InvalidInput`` if it verifies but is not a valid manifest."""
    if ref.size > MAX_MANIFEST_BYTES:
        raise InvalidInput(f"bundle manifest of {ref.size} bytes is over {MAX_MANIFEST_BYTES}")
    with store.open_stored(ref.sha256) as stream:
        # One byte more than expected is enough to tell a longer object; memory stays bounded.
        data = bytearray()
        while len(data) <= ref.size and (
            chunk := stream.read(min(CHUNK, ref.size + 1 - len(data)))
        ):
            data += chunk
    check_digest(ref, hashlib.sha256(data).hexdigest(), len(data), store.uri_for(ref.sha256))
    return Manifest(parse_manifest(bytes(data)), store.uri_for)


def member(manifest: Manifest, path: str) -> ArtifactRef:
    """The reference of one file of the bundle (format ``FILE_FORMAT``); ``NotFound`` if
    the bundle has no file at ``path``."""
    found = _find(manifest, path)
    if found is None:
        raise NotFound(f"no file {path!r} in the bundle")
    return _ref(manifest, found)


def listing(manifest: Manifest, folder: str) -> list[Entry]:
    """The direct children of ``folder`` ("" is the root), sorted by name; folders have no
    size. A ``folder`` naming a file lists that one file (by its name). ``NotFound`` if
    nothing is there."""
    folder = folder.rstrip("/")
    if folder:
        check_path(folder)
        if (found := _find(manifest, folder)) is not None:
            return [Entry(folder.rsplit("/", 1)[-1], False, found.size)]
    prefix = f"{folder}/" if folder else ""
    children: dict[str, Entry] = {}
    # Paths are sorted, so every path under the prefix is in one run from its insertion point.
    start = bisect.bisect_left(manifest.files, prefix, key=lambda f: f.path)
    for file in manifest.files[start:]:
        if not file.path.startswith(prefix):
            break
        name, slash, _ = file.path[len(prefix) :].partition("/")
        children[name] = Entry(name, True, None) if slash else Entry(name, False, file.size)
    if not children:
        raise NotFound(f"no file or folder {folder!r} in the bundle")
    return sorted(children.values())


def _find(manifest: Manifest, path: str) -> BundleFile | None:
    index = bisect.bisect_left(manifest.files, path, key=lambda f: f.path)
    if index < len(manifest.files) and manifest.files[index].path == path:
        return manifest.files[index]
    return None


def _ref(manifest: Manifest, file: BundleFile) -> ArtifactRef:
    return ArtifactRef(
        uri=manifest.uri_for(file.sha256), sha256=file.sha256, size=file.size, format=FILE_FORMAT
    )


# ---------------------------------------------------------------- store operations


def verify_bundle(store: ArtifactStore, ref: ArtifactRef) -> None:
    """``store.verify`` for a bundle: the manifest, then every file it lists."""
    for file_ref in _distinct_files(read_manifest(store, ref)):
        store.verify(file_ref)


def copy_bundle(target: ArtifactStore, source: ArtifactStore, ref: ArtifactRef) -> ArtifactRef:
    """``target.copy_from(source, ref)`` for a bundle: every file (each verified, and left
    alone if it already verifies here), then the manifest, last."""
    manifest = _manifest_here(target, ref)
    if manifest is None:
        manifest = read_manifest(source, ref)
    for file_ref in _distinct_files(manifest):
        target.copy_from(source, file_ref)
    target.copy_from(source, ref.model_copy(update={"format": FILE_FORMAT}))
    return ref.model_copy(update={"uri": target.uri_for(ref.sha256)})


def _manifest_here(store: ArtifactStore, ref: ArtifactRef) -> Manifest | None:
    """The manifest if ``store`` already holds it intact: then copying needs no read from
    the source for files that are here too."""
    if not store.exists(ref.sha256):
        return None
    try:
        return read_manifest(store, ref)
    except ChecksumMismatch:
        return None  # replaced by the source's copy at the end


def _distinct_files(manifest: Manifest) -> list[ArtifactRef]:
    unique = {file.sha256: file for file in manifest.files}  # same bytes at two paths: once
    return [_ref(manifest, file) for file in unique.values()]


# ---------------------------------------------------------------- writing bundles

Opener = Callable[[], AbstractContextManager[BinaryIO]]


def put_bundle(
    store: ArtifactStore,
    folder: Path,
    *,
    max_files: int = MAX_FILES,
    max_bytes: int = MAX_BUNDLE_BYTES,
) -> ArtifactRef:
    """Store every file under ``folder`` and then its manifest; return the manifest's
    reference (``format=BUNDLE_FORMAT``).

    Only regular files are stored. A symlink to a file inside the folder is stored as
    that file; a symlink to a folder is not followed (its files are not part of the
    bundle); a symlink that points outside the folder, a FIFO, a device or a name that
    is not a valid bundle path raises ``InvalidInput`` before any file is read, and so
    do more than ``max_files`` files or ``max_bytes`` bytes. A file that cannot be read
    to the end raises ``ArtifactError`` and no manifest is stored.
    """
    caps = _caps(max_files, max_bytes)
    root = Path(folder)
    if not root.is_dir():
        raise InvalidInput(f"bundle folder not found: {root}")
    return _put_tree(store, root.resolve(), caps)


def _caps(max_files: int, max_bytes: int) -> _Caps:
    if not 1 <= max_files <= MAX_FILES:
        raise InvalidInput(f"max_files must be between 1 and {MAX_FILES}, got {max_files}")
    if max_bytes < 0:
        raise InvalidInput(f"max_bytes must be >= 0, got {max_bytes}")
    return _Caps(max_files, max_bytes)


def _put_tree(store: ArtifactStore, root: Path, caps: _Caps) -> ArtifactRef:
    found = _scan(root, caps)
    if not found:
        raise InvalidInput(f"folder {root} holds no files")
    return _put_files(
        store, [(path, partial(_open_local, root, real)) for path, real in found], caps
    )


def _scan(root: Path, caps: _Caps) -> list[tuple[str, Path]]:
    """(bundle path, file to read) for every file under ``root``; reads no file."""
    found: list[tuple[str, Path]] = []
    total = 0
    pending = [(root, "")]
    try:
        while pending:
            folder, prefix = pending.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    path = check_path(prefix + entry.name)
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((Path(entry.path), f"{path}/"))
                    elif (real := _file_to_read(root, entry, path)) is not None:
                        found.append((path, real))
                        total += _size(real)
                        caps.check(len(found), total)
    except OSError as exc:
        raise _SourceBroken(f"could not list {root}: {exc}") from exc
    return found


def _file_to_read(root: Path, entry: os.DirEntry[str], path: str) -> Path | None:
    if entry.is_symlink():
        real = Path(os.path.realpath(entry.path))
        if not real.is_relative_to(root):
            raise InvalidInput(f"{path} is a symlink that points outside the source folder")
        if real.is_dir():
            return None  # not followed: no loops, and a folder is listed once
        if real.exists() and not real.is_file():
            raise InvalidInput(f"{path} is not a regular file")
        return real  # a dangling link fails when opened: a file that vanished
    if not entry.is_file(follow_symlinks=False):
        raise InvalidInput(f"{path} is not a regular file")
    return Path(entry.path)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0  # gone: opening it reports that


@contextmanager
def _open_local(root: Path, path: Path) -> Iterator[BinaryIO]:
    """Open a file found by ``_scan``, refusing one that is no longer a regular file
    inside ``root`` (a path swapped for a symlink or a FIFO after the scan)."""
    try:
        # NONBLOCK: opening a FIFO put there since the scan must not hang the server.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _SourceBroken(f"could not open {path}: {exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidInput(f"{path} is not a regular file")
        try:  # what was opened, whatever the path's folders became meanwhile (Linux)
            opened = Path(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            opened = path
        if not opened.is_relative_to(root):
            raise InvalidInput(f"{path} moved outside the source folder while it was read")
        yield handle


class _SourceReader:
    """Feeds a source file to a store while hashing it, so a store's failure can be told
    from a source that failed or changed under it."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._digest = hashlib.sha256()
        self.size = 0
        self.failed = False
        self.ended = False

    def read(self, size: int = -1, /) -> bytes:
        try:
            chunk = self._handle.read(size)
        except OSError:
            self.failed = True
            raise
        self._digest.update(chunk)
        self.size += len(chunk)
        self.ended = self.ended or not chunk
        return chunk

    def changed(self, ref: ArtifactRef) -> bool:
        if self.failed or self.size > ref.size:
            return True
        return self.ended and (self._digest.hexdigest(), self.size) != (ref.sha256, ref.size)


def _put_files(
    store: ArtifactStore, files: Sequence[tuple[str, Opener]], caps: _Caps
) -> ArtifactRef:
    """Store each file, then the manifest; ``_SourceBroken`` if a file cannot be read to
    the end (its stored predecessors stay: content-addressed, they harm nothing)."""
    caps.check(len(files), 0)
    stored: list[BundleFile] = []
    total = 0
    for path, opener in sorted(files, key=lambda item: item[0]):
        with opener() as handle:
            file = _put_file(store, path, handle, caps.bytes - total)
        total += file.size
        stored.append(file)
    return _put_manifest(store, stored)


def _put_file(store: ArtifactStore, path: str, handle: BinaryIO, room: int) -> BundleFile:
    try:
        sha256, size = stream_digest(handle)
        handle.seek(0)
    except OSError as exc:
        raise _SourceBroken(f"could not read {path}: {exc}") from exc
    if size > room:
        raise InvalidInput(f"source holds more than the bundle size cap (at {path})")
    ref = ArtifactRef(uri=store.uri_for(sha256), sha256=sha256, size=size, format=FILE_FORMAT)
    reader = _SourceReader(handle)
    try:
        store.put_verified(reader, ref)
    except (ArtifactError, OSError) as exc:
        if reader.changed(ref):
            raise _SourceBroken(f"{path} changed or failed while it was stored: {exc}") from exc
        raise
    return BundleFile(path, sha256, size)


def _put_manifest(store: ArtifactStore, files: list[BundleFile]) -> ArtifactRef:
    _check_files(files)
    data = _encode(files)
    sha256 = hashlib.sha256(data).hexdigest()
    ref = ArtifactRef(uri=store.uri_for(sha256), sha256=sha256, size=len(data), format=FILE_FORMAT)
    placed = store.put_verified(io.BytesIO(data), ref)
    return placed.model_copy(update={"format": BUNDLE_FORMAT})


# ---------------------------------------------------------------- MLflow sources


def ingest_source(
    store: ArtifactStore,
    source: str,
    *,
    roots: Sequence[str],
    max_files: int = MAX_FILES,
    max_bytes: int = MAX_BUNDLE_BYTES,
) -> ArtifactRef | None:
    """Read an MLflow model ``source`` into a bundle in ``store``; None if it cannot be read.

    Readable: ``file:///abs/path`` or ``/abs/path`` whose real path is inside one of the
    local ``roots`` (a folder, or one file, which becomes a bundle of that one file), and
    ``s3://bucket/prefix`` under one of the ``s3://`` ``roots`` (every object under the
    prefix, or the one object at it; the S3 endpoint and credentials are boto3's, as for
    the project's S3 store). Anything else (``runs:/``, ``models:/``, ``http://``, a
    missing path or object, an unreachable bucket, a source outside every root, a file
    that fails or changes mid-way) is None, and no manifest is stored. A source that is
    readable but not a valid bundle (an escaping symlink, a bad name, over the caps)
    raises ``InvalidInput``. ``roots`` that are neither absolute paths, ``file://`` nor
    ``s3://`` URIs raise ``InvalidInput``.
    """
    caps = _caps(max_files, max_bytes)
    local_roots, s3_roots = _parse_roots(roots)
    if source.startswith("s3://"):
        return _ingest_s3(store, source, s3_roots, caps)
    path = _local_path(source)
    if path is None:
        return None
    return _ingest_local(store, path, local_roots, caps)


def _parse_roots(roots: Sequence[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    local: list[Path] = []
    s3: list[tuple[str, str]] = []
    for root in roots:
        location = _s3_location(root) if root.startswith("s3://") else None
        path = None if root.startswith("s3://") else _local_path(root)
        if location is None and path is None:
            raise InvalidInput(
                f"invalid source root {root!r}: use an absolute path, file:// or s3://"
            )
        if location is not None:
            s3.append(location)
        if path is not None:
            local.append(path.resolve())
    return local, s3


def _local_path(uri: str) -> Path | None:
    if uri.startswith("file:"):
        parts = urlsplit(uri)
        if parts.netloc not in {"", "localhost"} or parts.query or parts.fragment:
            return None
        raw = unquote(parts.path)
    else:
        raw = uri
    if not raw.startswith("/") or "\x00" in raw:
        return None
    return Path(raw)


def _ingest_local(
    store: ArtifactStore, path: Path, roots: list[Path], caps: _Caps
) -> ArtifactRef | None:
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not any(real.is_relative_to(root) for root in roots):
        return None  # the server reads only where it was told it may
    try:
        if real.is_dir():
            return _put_tree(store, real, caps)
        if real.is_file():
            name = check_path(path.name if path.name not in {"", ".."} else real.name)
            return _put_files(store, [(name, partial(_open_local, real.parent, real))], caps)
    except _SourceBroken:
        return None
    return None


def _s3_location(uri: str) -> tuple[str, str] | None:
    """(bucket, key prefix without a trailing slash) of ``s3://bucket/prefix``; None if
    malformed. Keys are taken literally, as S3 does."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    key = key.rstrip("/")
    if not bucket or any(part in {"", ".", ".."} for part in key.split("/") if key):
        return None
    return bucket, key


def _s3_under(location: tuple[str, str], root: tuple[str, str]) -> bool:
    (bucket, key), (root_bucket, root_key) = location, root
    if bucket != root_bucket:
        return False
    return not root_key or key == root_key or key.startswith(f"{root_key}/")


def _ingest_s3(
    store: ArtifactStore, source: str, roots: list[tuple[str, str]], caps: _Caps
) -> ArtifactRef | None:
    location = _s3_location(source)
    if location is None or not any(_s3_under(location, root) for root in roots):
        return None
    from registry.artifacts.s3 import make_client

    client = make_client()  # the endpoint from the environment, as every S3 store here
    bucket, key = location
    try:
        objects = _s3_objects(client, bucket, key, caps)
        if not objects:
            return None
        files = [
            (path, partial(_s3_download, client, bucket, k, caps.bytes)) for path, k in objects
        ]
        return _put_files(store, files, caps)
    except _SourceBroken:
        return None


def _s3_objects(client: Any, bucket: str, key: str, caps: _Caps) -> list[tuple[str, str]]:
    """(bundle path, object key) for every object under ``key/``, or for the one object at
    ``key``; empty if there is none. ``_SourceBroken`` if the bucket cannot be listed."""
    from registry.artifacts.s3 import _translated

    prefix = f"{key}/" if key else ""
    found: list[tuple[str, str]] = []
    total = 0
    try:
        with _translated(f"list s3://{bucket}/{prefix}"):
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):
                        continue  # a console's "folder" marker, not a file
                    found.append((check_path(item["Key"][len(prefix) :]), item["Key"]))
                    total += int(item["Size"])
                    caps.check(len(found), total)
            if not found and key:
                client.head_object(Bucket=bucket, Key=key)  # one object at the prefix itself
                found.append((check_path(key.rsplit("/", 1)[-1]), key))
    except ArtifactError as exc:
        raise _SourceBroken(str(exc)) from exc
    return found


@contextmanager
def _s3_download(client: Any, bucket: str, key: str, limit: int) -> Iterator[BinaryIO]:
    """The object's bytes in a temporary file (at most ``limit`` + 1 of them)."""
    from registry.artifacts.s3 import _translated

    with tempfile.TemporaryFile(prefix="modelreg-source-") as out:
        try:
            with _translated(f"read s3://{bucket}/{key}"):
                body = client.get_object(Bucket=bucket, Key=key)["Body"]
                try:
                    written = 0
                    while written <= limit and (chunk := body.read(CHUNK)):
                        out.write(chunk)
                        written += len(chunk)
                finally:
                    body.close()
        except ArtifactError as exc:
            raise _SourceBroken(str(exc)) from exc
        out.seek(0)
        yield out
