"""``modelreg gc``: remove artifact bytes no version references, and (if asked) old versions.

The rules, in the order a run applies them:

1. ``keep_versions`` (optional): of each model, the versions older than its N newest
   that nothing protects (``retention_models.prunable``) are deleted through
   ``store.delete_version``, so the store's own refusals hold here as at every door.
2. Every artifact store (the main one and each region's) is listed by content key
   only (``iter_content``): backups, temporary uploads and anything else are never
   seen. Then the references are read: every version's artifact, the files of every
   referenced bundle (read from its manifest), every digest that ever served in
   Production, the subject manifests, and the registrations queued in this machine's
   outbox.
3. An object that none of those names and that is older than ``min_age`` is removed.
   The age is the race guard: an upload whose registration has not committed yet is
   unreferenced for a moment, and must never be collected. The references are read a
   second time just before the deletes, and anything referenced by then stays.
4. Each removal is logged: an ``artifact.collected`` event on the model whose version
   had the bytes (``record_collection``), and a JSON line in ``<home>/gc.log``, which
   is the only record of bytes no registration ever named (no model to log them on).

A dry run does steps 1 to 3 on paper: it deletes nothing and logs nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, computed_field

from registry.artifacts.base import BUNDLE_FORMAT, ArtifactStore, StoredObject
from registry.errors import ArtifactError, ChecksumMismatch, Conflict, InvalidInput
from registry.models import ArtifactRef
from registry.retention_models import (
    ArtifactReferences,
    ArtifactUse,
    CollectedArtifact,
    prunable,
)
from registry.store.base import RegistryStore

MAIN_STORE = "artifacts"  # the label of the main artifact store; regions go by name
LOG_FILE = "gc.log"
DEFAULT_MIN_AGE = timedelta(hours=24)
_RECORD_CHUNK = 1000
_MANIFEST_HEAD = b'{"bundle":1,'  # every canonical manifest starts so (sorted keys)
_DURATION_RE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class VersionGone(_Frozen):
    """A version ``--keep-versions`` chose, and what became of it."""

    model: str
    version: int
    sha256: str
    deleted: bool  # False in a dry run, or when the store refused
    refused: str | None = None  # the store's reason, when it refused


class ArtifactGone(_Frozen):
    """Bytes a run removed (or, in a dry run, would remove) from one store."""

    store: str
    sha256: str
    size: int
    last_modified: datetime
    via: str | None = None  # the bundle manifest it was a file of
    event: int | None = None  # the artifact.collected event's seq (None: unattributed)


class GcReport(_Frozen):
    dry_run: bool
    min_age_s: float
    keep_versions: int | None
    stores: tuple[str, ...]
    versions: tuple[VersionGone, ...] = ()
    artifacts: tuple[ArtifactGone, ...] = ()
    young: int = 0  # unreferenced objects left because they are younger than min_age
    kept: int = 0  # objects left because something references them

    @computed_field  # type: ignore[prop-decorator]
    @property
    def bytes_freed(self) -> int:
        return sum(item.size for item in self.artifacts)


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` or ``0``; ``InvalidInput`` otherwise."""
    value = text.strip().lower() if isinstance(text, str) else ""
    if value == "0":
        return timedelta(0)
    match = _DURATION_RE.match(value)
    if match is None:
        raise InvalidInput(f"invalid duration {text!r}: use a number and s, m, h, d or w (24h)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class GcOptions:
    min_age: timedelta = DEFAULT_MIN_AGE
    keep_versions: int | None = None
    dry_run: bool = False
    log_path: Path | None = None  # where the audit lines go (None: none written)
    pending: frozenset[str] = frozenset()  # digests of registrations not delivered yet


def collect(
    store: RegistryStore,
    stores: Mapping[str, ArtifactStore],
    options: GcOptions,
    *,
    now: datetime | None = None,
) -> GcReport:
    """One gc run over ``stores`` (label -> store); see the module docstring."""
    if options.keep_versions is not None and options.keep_versions < 0:
        raise InvalidInput("--keep-versions must be 0 or more")
    if options.min_age < timedelta(0):
        raise InvalidInput("--min-age must not be negative")
    versions, gone = _prune(store, options)
    listings = {label: list(artifacts.iter_content()) for label, artifacts in stores.items()}
    references = store.artifact_references()
    moment = now or datetime.now(UTC)
    plan = _Plan(references, stores, gone, options.pending)
    doomed, young, kept = plan.candidates(listings, moment - options.min_age)
    artifacts: tuple[ArtifactGone, ...] = tuple(doomed)
    if not options.dry_run and doomed:
        artifacts = _remove(store, stores, doomed, options)
    return GcReport(
        dry_run=options.dry_run,
        min_age_s=options.min_age.total_seconds(),
        keep_versions=options.keep_versions,
        stores=tuple(stores),
        versions=tuple(versions),
        artifacts=artifacts,
        young=young,
        kept=kept,
    )


# ---------------------------------------------------------------- old versions


def _prune(store: RegistryStore, options: GcOptions) -> tuple[list[VersionGone], list[ArtifactUse]]:
    """Delete (or, in a dry run, only choose) the old versions. Returns what became of
    each, and the versions the references must be read without (a dry run's choice:
    a real run's deleted rows are simply gone from the next read)."""
    if options.keep_versions is None:
        return [], []
    chosen = prunable(store.artifact_references(), options.keep_versions)
    if options.dry_run:
        return [_gone(use, deleted=False) for use in chosen], chosen
    results: list[VersionGone] = []
    for use in chosen:
        try:
            store.delete_version(use.model, use.version)
        except Conflict as exc:  # it came to serve since it was read: the store says no
            results.append(_gone(use, deleted=False, refused=str(exc)))
        else:
            results.append(_gone(use, deleted=True))
    return results, []


def _gone(use: ArtifactUse, *, deleted: bool, refused: str | None = None) -> VersionGone:
    return VersionGone(
        model=use.model, version=use.version, sha256=use.sha256, deleted=deleted, refused=refused
    )


# ---------------------------------------------------------------- what stays


class _Plan:
    """What must stay in each store: the references, and the files of their bundles."""

    def __init__(
        self,
        references: ArtifactReferences,
        stores: Mapping[str, ArtifactStore],
        without: list[ArtifactUse],
        pending: Iterable[str],
    ) -> None:
        self.stores = stores
        members = _bundle_files(references.bundles(without=without), stores)
        self.keep = (
            references.referenced(without=without) | references.protected() | members | set(pending)
        )

    def candidates(
        self, listings: Mapping[str, list[StoredObject]], cutoff: datetime
    ) -> tuple[list[ArtifactGone], int, int]:
        """(what to remove, how many unreferenced objects are too young, how many kept)."""
        doomed: list[ArtifactGone] = []
        young = kept = 0
        for label, objects in listings.items():
            unreferenced = [obj for obj in objects if obj.sha256 not in self.keep]
            kept += len(objects) - len(unreferenced)
            old = [obj for obj in unreferenced if obj.last_modified <= cutoff]
            young += len(unreferenced) - len(old)
            doomed.extend(self._attributed(label, old))
        return doomed, young, kept

    def _attributed(self, label: str, old: list[StoredObject]) -> list[ArtifactGone]:
        """The objects of one store, each bundle file tagged with its (also unreferenced)
        manifest, and manifests last: a run cut short leaves a manifest that still names
        its files for the next run to attribute."""
        by_sha = {obj.sha256: obj for obj in old}
        via: dict[str, str] = {}
        manifests: set[str] = set()
        for obj in old:
            files = _manifest_files(self.stores[label], obj)
            if files is not None:
                manifests.add(obj.sha256)
                via.update(
                    (sha, obj.sha256) for sha in files if sha in by_sha and sha != obj.sha256
                )
        ordered = sorted(old, key=lambda obj: (obj.sha256 in manifests, obj.sha256))
        return [
            ArtifactGone(
                store=label,
                sha256=obj.sha256,
                size=obj.size,
                last_modified=obj.last_modified,
                via=via.get(obj.sha256),
            )
            for obj in ordered
        ]


def _bundle_files(bundles: list[ArtifactUse], stores: Mapping[str, ArtifactStore]) -> set[str]:
    """The files of every referenced bundle, from the first store whose manifest verifies.
    A manifest no store can give stops the run: its files cannot be told from garbage."""
    from registry.artifacts.bundle import read_manifest

    files: set[str] = set()
    for use in bundles:
        ref = ArtifactRef(uri="gc:", sha256=use.sha256, size=use.size, format=BUNDLE_FORMAT)
        for artifacts in stores.values():
            try:
                manifest = read_manifest(artifacts, ref)
            except (ArtifactError, ChecksumMismatch, InvalidInput):
                continue
            files.update(file.sha256 for file in manifest.files)
            break
        else:
            raise ArtifactError(
                f"no artifact store holds a readable manifest of bundle {use.sha256[:12]} "
                f"({use.model} version {use.version}): nothing was collected, since its files "
                "cannot be told apart from unreferenced bytes"
            )
    return files


def _manifest_files(artifacts: ArtifactStore, obj: StoredObject) -> set[str] | None:
    """The files an unreferenced object lists, if it is a bundle manifest (else None)."""
    from registry.artifacts.bundle import MAX_MANIFEST_BYTES, parse_manifest

    if obj.size > MAX_MANIFEST_BYTES or obj.size < len(_MANIFEST_HEAD):
        return None
    try:
        with artifacts.open_stored(obj.sha256) as stream:
            if stream.read(len(_MANIFEST_HEAD)) != _MANIFEST_HEAD:
                return None
            data = _MANIFEST_HEAD + stream.read(obj.size)
        return {file.sha256 for file in parse_manifest(data)}
    except (ArtifactError, InvalidInput):
        return None


# ---------------------------------------------------------------- removing


def _remove(
    store: RegistryStore,
    stores: Mapping[str, ArtifactStore],
    doomed: list[ArtifactGone],
    options: GcOptions,
) -> tuple[ArtifactGone, ...]:
    """Delete, then log: an event per attributable removal and a line for every one."""
    now_referenced = store.artifact_references().referenced()  # the last look before deleting
    removed = []
    for item in doomed:
        if item.sha256 in now_referenced or (item.via is not None and item.via in now_referenced):
            continue
        stores[item.store].delete(item.sha256)
        removed.append(item)
    logged = _record(store, removed, options)
    _audit(options.log_path, logged)
    return tuple(logged)


def _record(
    store: RegistryStore, removed: list[ArtifactGone], options: GcOptions
) -> list[ArtifactGone]:
    reason = f"unreferenced for longer than {format_duration(options.min_age)}"
    if options.keep_versions is not None:
        reason += f" (gc --keep-versions {options.keep_versions})"
    logged: list[ArtifactGone] = []
    for start in range(0, len(removed), _RECORD_CHUNK):
        chunk = removed[start : start + _RECORD_CHUNK]
        items = [
            CollectedArtifact(sha256=i.sha256, size=i.size, store=i.store, via=i.via) for i in chunk
        ]
        try:
            record = store.record_collection(items, reason=reason)
        except Exception:
            _audit(options.log_path, removed[start:], note="removed; its event was not recorded")
            raise
        seqs = {(e.details.sha256, e.subject): e.seq for e in record.events}
        logged.extend(i.model_copy(update={"event": seqs.get((i.sha256, i.store))}) for i in chunk)
    return logged


def _audit(path: Path | None, items: list[ArtifactGone], *, note: str | None = None) -> None:
    if path is None or not items:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    with path.open("a", encoding="utf-8") as log:
        for item in items:
            line = {"at": at, "collected": item.model_dump(mode="json")}
            if note is not None:
                line["note"] = note
            log.write(json.dumps(line, sort_keys=True) + "\n")


def format_duration(delta: timedelta) -> str:
    """As ``parse_duration`` reads it, in hours up to two days (``24h``, ``2d``, ``3w``)."""
    seconds = int(delta.total_seconds())
    for unit in ("w", "d", "h", "m"):
        count, rest = divmod(seconds, _UNITS[unit])
        if count and not rest and (count >= 2 or unit in "hm"):
            return f"{count}{unit}"
    return f"{seconds}s"
