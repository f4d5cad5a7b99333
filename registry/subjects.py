"""Data subjects: the registry secret, subject keys and subject manifests.

A data subject's id (a customer id, say) never reaches the registry. It is keyed
here, on the client, as the hex HMAC-SHA256 of the NFC-normalised, stripped id
under a secret that lives outside the registry's database and its backups: a
stolen database or backup then holds keys nobody can link back to a person
without the secret, and destroying the secret makes every key unlinkable.

The secret is ``MODELREG_SUBJECT_SECRET`` (at least 64 hex digits: 32 bytes or
more), else the key file ``<MODELREG_HOME>/subject.key`` (32 random bytes, mode
0600), created on first use. Every machine that records manifests or asks about a
subject must use the same secret: a manifest's header carries the secret's
fingerprint (``fingerprint``) so a mismatch is found, not silently missed.

A subject manifest is a content-addressed artifact (format ``subject-manifest``)::

    modelreg-subject-manifest 1 key=1a2b3c4d subjects=3
    0f3c…(64 hex)
    5e9a…
    c017…

the header line (format name, format version, key fingerprint, count), then the
sorted, unique keys, one per line. The store indexes the keys
(``record_subject_manifest``); the artifact is the full record.

Light imports only: the CLI imports this module.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import itertools
import os
import secrets
import stat
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import ArtifactError, InvalidInput
from registry.models import SUBJECT_KEY_RE, ArtifactRef, SubjectManifest

if TYPE_CHECKING:
    from registry.artifacts import ArtifactStore
    from registry.config import Settings
    from registry.store.base import RegistryStore

SECRET_ENV = "MODELREG_SUBJECT_SECRET"
SECRET_BYTES = 32
MANIFEST_FORMAT = "subject-manifest"
MANIFEST_VERSION = 1
_MAGIC = "modelreg-subject-manifest"
_FINGERPRINT_MESSAGE = b"modelreg-fingerprint"


# ---------------------------------------------------------------- the secret


def load_secret(settings: Settings) -> bytes:
    """The registry secret: ``MODELREG_SUBJECT_SECRET``, else the key file (created
    with 32 random bytes, mode 0600, if missing). ``InvalidInput`` for a malformed
    secret, or a key file others can read or of the wrong length."""
    if settings.subject_secret is not None:
        return _secret_from_hex(settings.subject_secret)
    return _secret_from_file(settings.subject_key_path)


def _secret_from_hex(text: str) -> bytes:
    try:
        secret = bytes.fromhex(text.strip())
    except ValueError:
        secret = b""
    if len(secret) < SECRET_BYTES:
        raise InvalidInput(
            f"{SECRET_ENV} must be at least {2 * SECRET_BYTES} hex digits "
            f"({SECRET_BYTES} bytes), e.g. from: python -c 'import secrets; "
            "print(secrets.token_hex(32))'"
        )
    return secret


def _secret_from_file(path: Path) -> bytes:
    if not path.exists():
        _create_key_file(path)
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise InvalidInput(f"subject key file {path} is not a regular file")
        if mode & 0o077:
            raise InvalidInput(
                f"subject key file {path} is readable by others (mode {mode & 0o777:04o}): "
                f"chmod 600 {path}"
            )
        secret = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"could not read subject key file {path}: {exc.strerror}") from exc
    if len(secret) != SECRET_BYTES:
        raise InvalidInput(
            f"subject key file {path} holds {len(secret)} bytes, expected {SECRET_BYTES}: "
            "it is damaged or not a modelreg subject key"
        )
    return secret


def _create_key_file(path: Path) -> None:
    """Write 32 random bytes to a private temporary file, then link it into place:
    a concurrent reader never sees a half-written key, and of two processes creating
    it at once, the first link wins and both use its key."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(SECRET_BYTES))
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise InvalidInput(f"could not create subject key file {path}: {exc.strerror}") from exc


# ---------------------------------------------------------------- keys


def subject_key(secret: bytes, subject_id: str) -> str:
    """The hex HMAC-SHA256 of the NFC-normalised, stripped ``subject_id``.

    NFC first, so "José" typed on two keyboards (precomposed é, or e + combining
    accent) is one subject; stripped, so a trailing space in a CSV is not another.
    """
    if not isinstance(subject_id, str):
        raise InvalidInput(f"a subject id must be text, not {type(subject_id).__name__}")
    text = unicodedata.normalize("NFC", subject_id).strip()
    if not text:
        raise InvalidInput("a subject id must not be blank")
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


def fingerprint(secret: bytes) -> str:
    """Eight hex digits that tell secrets apart without revealing them."""
    return hmac.new(secret, _FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:8]


# ---------------------------------------------------------------- manifests


@dataclass(frozen=True)
class Manifest:
    """A parsed subject manifest: the key fingerprint it was written with, its keys."""

    fingerprint: str
    keys: tuple[str, ...]


def manifest_bytes(secret: bytes, keys: Iterable[str]) -> bytes:
    """The manifest file for these subject keys (sorted and de-duplicated here)."""
    unique = sorted(set(keys))
    for key in unique:
        if not SUBJECT_KEY_RE.fullmatch(key):
            raise InvalidInput(f"invalid subject key {key[:80]!r}: expected 64 lowercase hex")
    header = f"{_MAGIC} {MANIFEST_VERSION} key={fingerprint(secret)} subjects={len(unique)}\n"
    return (header + "".join(f"{key}\n" for key in unique)).encode("ascii")


def write_manifest(
    settings: Settings,
    dataset: str,
    version: str,
    subject_ids: Iterable[str],
    *,
    store: RegistryStore | None = None,
    secret: bytes | None = None,
) -> SubjectManifest:
    """Key ``subject_ids``, store the manifest artifact, and record it for
    ``dataset@version`` in the registry (``store``, else ``settings.connect()``).

    The artifact is written first: a registry that is down (``RegistryUnavailable``)
    leaves it stored, and recording again later stores nothing twice.
    """
    ref, keys = store_manifest(settings, subject_ids, secret=secret)
    if store is not None:
        return store.record_subject_manifest(dataset, version, ref, keys)
    with settings.connect() as opened:
        return opened.record_subject_manifest(dataset, version, ref, keys)


def store_manifest(
    settings: Settings, subject_ids: Iterable[str], *, secret: bytes | None = None
) -> tuple[ArtifactRef, list[str]]:
    """Key ``subject_ids`` and store their manifest artifact: its reference, the keys."""
    secret = load_secret(settings) if secret is None else secret
    keys = sorted({subject_key(secret, subject_id) for subject_id in subject_ids})
    return put_manifest(settings.artifacts(), manifest_bytes(secret, keys)), keys


def put_manifest(artifacts: ArtifactStore, data: bytes) -> ArtifactRef:
    """Store manifest bytes under their sha256 (verified on the way in)."""
    sha256 = hashlib.sha256(data).hexdigest()
    ref = ArtifactRef(
        uri=artifacts.uri_for(sha256), sha256=sha256, size=len(data), format=MANIFEST_FORMAT
    )
    return artifacts.put_verified(io.BytesIO(data), ref)


def read_manifest(
    artifacts: ArtifactStore, ref: ArtifactRef, *, secret: bytes | None = None
) -> Manifest:
    """The manifest ``ref`` names, its bytes checked against ``ref``'s size and sha256
    before anything is parsed (``ChecksumMismatch`` if tampered with or truncated).
    With ``secret``, a manifest written under another secret is refused."""
    from registry.artifacts.base import check_digest

    with artifacts.open_stored(ref.sha256) as stream:
        data = stream.read()
    check_digest(ref, hashlib.sha256(data).hexdigest(), len(data), artifacts.uri_for(ref.sha256))
    manifest = parse_manifest(data, where=ref.sha256[:12])
    if secret is not None and manifest.fingerprint != fingerprint(secret):
        raise InvalidInput(
            f"subject manifest {ref.sha256[:12]} was written with key {manifest.fingerprint}, "
            f"not this registry's key {fingerprint(secret)} ({SECRET_ENV} or subject.key differ)"
        )
    return manifest


def parse_manifest(data: bytes, *, where: str) -> Manifest:
    """Parse verified manifest bytes; ``ArtifactError`` if they are not a manifest."""

    def refuse(why: str) -> ArtifactError:
        return ArtifactError(f"artifact {where} is not a valid subject manifest: {why}")

    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise refuse("not ASCII text") from None
    header, _, body = text.partition("\n")
    parts = header.split(" ")
    if len(parts) != 4 or parts[0] != _MAGIC:
        raise refuse(f"the first line is not a {_MAGIC} header")
    if parts[1] != str(MANIFEST_VERSION):
        raise refuse(f"format version {parts[1]!r}, this code reads {MANIFEST_VERSION}")
    key_field, count_field = parts[2].partition("="), parts[3].partition("=")
    if key_field[0] != "key" or not _is_hex(key_field[2], 8):
        raise refuse("no key fingerprint in the header")
    if count_field[0] != "subjects" or not count_field[2].isdigit():
        raise refuse("no subject count in the header")
    keys = tuple(body.split("\n")[:-1]) if body else ()
    if body and not body.endswith("\n"):
        raise refuse("the last line is cut short")
    if len(keys) != int(count_field[2]):
        raise refuse(f"the header says {count_field[2]} subjects, the file lists {len(keys)}")
    if not all(SUBJECT_KEY_RE.fullmatch(key) for key in keys):
        raise refuse("a line is not a subject key")
    if any(a >= b for a, b in itertools.pairwise(keys)):
        raise refuse("the keys are not sorted and unique")
    return Manifest(fingerprint=key_field[2], keys=keys)


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdef" for c in text)


# ---------------------------------------------------------------- while the registry is down
# A manifest stored but not recorded waits as a small file (dataset, version, reference)
# under ``<home>/subject-manifests.pending/``; ``record_pending`` records it later from
# the artifact itself. The artifact is the record: the note holds no subject key.

PENDING_FOLDER = "subject-manifests.pending"


def remember_pending(settings: Settings, dataset: str, version: str, ref: ArtifactRef) -> Path:
    """Note a manifest to record once the registry is back (fsynced, replaced atomically)."""
    import json

    folder = settings.home / PENDING_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(f"{dataset}@{version}".encode()).hexdigest()[:32]
    path = folder / f"{name}.json"
    tmp = folder / f".{name}.{secrets.token_hex(6)}"
    note = {"dataset": dataset, "version": version, "manifest": ref.model_dump(mode="json")}
    with tmp.open("w", encoding="utf-8") as out:
        json.dump(note, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return path


def record_pending(settings: Settings, store: RegistryStore) -> int:
    """Record every noted manifest (read back and verified from the artifact store);
    returns how many were recorded. A note whose manifest the registry refuses for
    good (a conflicting one was recorded meanwhile) is kept, and the error raised."""
    import json

    folder = settings.home / PENDING_FOLDER
    if not folder.is_dir():
        return 0
    secret = load_secret(settings)
    artifacts = settings.artifacts()
    done = 0
    for path in sorted(folder.glob("*.json")):
        note = json.loads(path.read_text(encoding="utf-8"))
        ref = ArtifactRef.model_validate(note["manifest"])
        keys = read_manifest(artifacts, ref, secret=secret).keys
        store.record_subject_manifest(note["dataset"], note["version"], ref, keys)
        path.unlink()
        done += 1
    return done


def pending_manifests(settings: Settings) -> frozenset[str]:
    """Digests of the manifests noted and not recorded yet (gc must keep their bytes)."""
    import json

    folder = settings.home / PENDING_FOLDER
    if not folder.is_dir():
        return frozenset()
    digests = set()
    for path in folder.glob("*.json"):
        note = json.loads(path.read_text(encoding="utf-8"))
        digests.add(str(note["manifest"]["sha256"]))
    return frozenset(digests)


def deliver_pending(settings: Settings) -> int:
    """Record the noted manifests if the registry is reachable (the drain flow calls
    this before it delivers queued registrations); 0 while it is still down."""
    from registry.errors import RegistryUnavailable

    folder = settings.home / PENDING_FOLDER
    if not folder.is_dir() or not any(folder.glob("*.json")):
        return 0
    try:
        with settings.connect() as store:
            return record_pending(settings, store)
    except RegistryUnavailable:
        return 0
