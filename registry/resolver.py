"""The serving resolver: the model to serve, loaded and checked, looked up in memory.

``Resolver.get(ref)`` is a dictionary read: no registry query and no I/O per call.
A follower thread watches the registry's event log (a cheap poll of the newest
sequence number; on PostgreSQL it is also woken by the NOTIFY the event's own
transaction sends, and behind a registry server, ``http(s)://…``, by the server's
event stream) and a TTL refresh is only a fallback. When a pointer moves,
the new version is downloaded from the resolver's own region, its size and
sha256 are checked, it is loaded (skops, trusted types only), its signature is
checked against the schema the serving code sends, and only then swapped in,
atomically. Anything that fails (registry unreachable, bytes missing or tampered,
a download past its budget, model-code skew) leaves the current model serving,
marks the resolver degraded with the reason, and is retried with backoff.

Every model it swaps in is written to an on-disk last-known-good cache, so a
process that starts while the registry is unreachable serves what it served
before (and says so), and one that starts while the newest bytes are missing in
its region serves the newest version it can verify.

Importing this module imports nothing heavy (no prefect, no pandas, no sklearn).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from registry.config import Settings
from registry.errors import (
    ChecksumMismatch,
    InvalidInput,
    NotFound,
    RegistryError,
    RegistryUnavailable,
)
from registry.models import ArtifactRef, ModelVersion, Signature, Stage
from registry.store.base import RegistryStore

if TYPE_CHECKING:
    from registry.store.http_feed import SseListener
    from registry.store.sql.listen import EventListener

log = logging.getLogger("modelreg.resolver")

Loader = Callable[[Path, ArtifactRef], Any]
POINTER_KINDS = frozenset({"stage", "alias", "rollback", "binding"})
MAX_BACKOFF_S = 30.0


def load_skops(path: Path, ref: ArtifactRef) -> Any:
    """The model in ``path``, its size and sha256 checked first, trusted types only."""
    from registry.modelio import load_model

    return load_model(path, sha256=ref.sha256, size=ref.size)


@dataclass(frozen=True)
class Target:
    """What a reference points at now, in the registry."""

    name: str
    version: int
    generation: int


@dataclass(frozen=True)
class Served:
    """One loaded model and what it is: the value ``get`` returns."""

    ref: str
    name: str
    version: int
    generation: int
    signature: Signature | None
    artifact: ArtifactRef
    model: Any
    source: str = "registry"  # or "disk": the last-known-good cache, at start-up

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Predictions for ``rows``; a row with missing, extra or mistyped features is
        ``InvalidInput`` naming them, never a silent null or a cast."""
        if self.signature is None:
            raise InvalidInput(f"{self.name} v{self.version} has no signature to check rows by")
        check_rows(self.signature, rows)
        from registry.release.health_worker import frame_from_records

        features = [f.model_dump() for f in self.signature.features]
        frame = frame_from_records(rows, features)
        return list(self.model.predict(frame).tolist())


_NUMBER = (int, float)
_KINDS: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "category": (str,),
    "string": (str,),
    "object": (str,),
    "date": (str,),
}


def check_rows(signature: Signature, rows: Sequence[Mapping[str, Any]]) -> None:
    """Every row has exactly the signature's features, each of a JSON type its dtype takes."""
    names = [f.name for f in signature.features]
    wanted = set(names)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InvalidInput(f"row {index} is not an object of features")
        missing = [n for n in names if n not in row]
        extra = sorted(set(row) - wanted)
        mistyped = [
            f"{f.name} ({f.dtype}, got {type(row[f.name]).__name__})"
            for f in signature.features
            if f.name in row and not _fits(f.dtype, row[f.name])
        ]
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing)}")
        if extra:
            problems.append(f"extra {', '.join(extra)}")
        if mistyped:
            problems.append(f"mistyped {', '.join(mistyped)}")
        if problems:
            raise InvalidInput(f"row {index}: {'; '.join(problems)}")


def _fits(dtype: str, value: Any) -> bool:
    if value is None:
        return False
    if dtype in _KINDS:
        return isinstance(value, _KINDS[dtype]) and not (
            dtype != "bool" and isinstance(value, bool)
        )
    if isinstance(value, bool):
        return False
    if dtype.startswith(("int", "uint")):
        return isinstance(value, int)
    if dtype.startswith("float"):
        return isinstance(value, _NUMBER)
    return isinstance(value, str)  # datetimes and durations arrive as ISO text


@dataclass
class _Slot:
    """One reference the resolver keeps: what serves, and what went wrong last."""

    key: str
    served: Served | None = None
    degraded: str | None = None
    applied_seq: int = 0
    failures: int = 0
    retry_at: float = 0.0
    swaps: int = 0
    swap_failures: int = 0


@dataclass(frozen=True)
class ResolverStatus:
    ref: str
    version: int | None
    generation: int | None
    source: str | None
    degraded: bool
    reason: str | None
    behind: int  # events in the log the resolver has not applied yet
    seq: int
    swaps: int
    swap_failures: int


@dataclass
class _Options:
    poll_s: float = 0.1
    ttl_s: float = 30.0
    budget_s: float = 60.0
    heartbeat_s: float = 5.0
    loader: Loader = field(default=load_skops)


class Resolver:
    """Serve ``refs`` (``name@production``, ``name@champion``, ``name@7``, or
    ``app=fraud-service,release=1.0.0``) from ``region``; see the module docstring.

    ``schema`` is the feature schema the serving code sends: a model whose signature
    differs is never swapped in. Use as a context manager, or ``start()``/``close()``.
    """

    def __init__(
        self,
        settings: Settings,
        region: str,
        refs: Sequence[str],
        *,
        schema: Signature | None = None,
        cache_dir: Path | None = None,
        poll_s: float = 0.1,
        ttl_s: float = 30.0,
        budget_s: float = 60.0,
        heartbeat_s: float = 5.0,
        loader: Loader = load_skops,
        resolver_id: str | None = None,
    ) -> None:
        if not refs:
            raise InvalidInput("a resolver needs at least one reference to serve")
        self.settings = settings
        self.region = region
        self.schema = schema
        self.id = resolver_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.cache_dir = Path(cache_dir or settings.home / "resolver" / region)
        self.options = _Options(poll_s, ttl_s, budget_s, heartbeat_s, loader)
        self._slots = {parse_ref(r): _Slot(parse_ref(r)) for r in refs}
        # The hot path reads this dict only; swaps replace one entry (atomic in CPython).
        self._served: dict[str, Served] = {}
        self._seq = 0  # the newest sequence number seen in the log
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._store: RegistryStore | None = None
        self._started_at = datetime.now(UTC)
        self._downloads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="modelreg-dl")
        self._channel: _Channel | None = None

    # ------------------------------------------------------------ the hot path

    def get(
        self, ref: str | None = None, *, app: str | None = None, release: str | None = None
    ) -> Served:
        """The model serving ``ref`` now (the only one, if the resolver keeps one)."""
        if app is not None or release is not None:
            ref = f"app={app},release={release}"
        if ref is None:
            if len(self._served) == 1:
                return next(iter(self._served.values()))
            raise InvalidInput("this resolver serves several references: name one")
        try:
            return self._served[ref]
        except KeyError:
            return self._served_slow(ref)

    def _served_slow(self, ref: str) -> Served:
        key = parse_ref(ref)
        if key in self._served:
            return self._served[key]
        slot = self._slots.get(key)
        if slot is None:
            raise NotFound(
                f"this resolver does not serve {ref!r} (it serves {', '.join(self._slots)})"
            )
        raise NotFound(f"nothing can be served for {ref!r} yet: {slot.degraded or 'starting'}")

    # ------------------------------------------------------------ life cycle

    def __enter__(self) -> Resolver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self) -> Resolver:
        """Resolve every reference (from the registry, else from the disk cache), then
        follow the event log in the background."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._seq = self._open().latest_seq()
        except (RegistryError, OSError) as exc:
            log.warning("registry unreachable at start-up: %s", exc)
        self._channel = _Channel.join(self)
        for slot in self._slots.values():
            self._refresh(slot, starting=True)
        self._thread = threading.Thread(target=self._follow, name="modelreg-resolver", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._channel is not None:
            self._channel.leave(self)
            self._channel = None
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._downloads.shutdown(wait=False, cancel_futures=True)
        if self._store is not None:
            self._store.close()
            self._store = None

    def status(self) -> list[ResolverStatus]:
        out = []
        for slot in self._slots.values():
            served = slot.served
            out.append(
                ResolverStatus(
                    ref=slot.key,
                    version=None if served is None else served.version,
                    generation=None if served is None else served.generation,
                    source=None if served is None else served.source,
                    degraded=slot.degraded is not None,
                    reason=slot.degraded,
                    behind=max(self._seq - slot.applied_seq, 0),
                    seq=slot.applied_seq,
                    swaps=slot.swaps,
                    swap_failures=slot.swap_failures,
                )
            )
        return out

    def refresh_now(self) -> None:
        """Wake the follower (for an operator; the follower needs no help)."""
        self._wake.set()

    # ------------------------------------------------------------ following the log

    def _open(self) -> RegistryStore:
        if self._store is None:
            self._store = self.settings.connect()
        return self._store

    def _follow(self) -> None:
        last_ttl = last_beat = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(min(self.options.ttl_s, self.options.heartbeat_s, 0.5))
            self._wake.clear()
            if self._stop.is_set():
                return
            now = time.monotonic()
            try:
                self._apply_new_events()
            except RegistryError as exc:
                self._all_degraded(f"registry unreachable: {exc}")
            due = now - last_ttl >= self.options.ttl_s
            for slot in self._slots.values():
                if due or (slot.degraded is not None and now >= slot.retry_at):
                    self._refresh(slot)
            if due:
                last_ttl = now
            if now - last_beat >= self.options.heartbeat_s:
                self._heartbeat()
                last_beat = now

    def _apply_new_events(self) -> None:
        channel = self._channel
        if channel is None:
            return
        if channel.error is not None:
            raise RegistryUnavailable(channel.error)
        newest = channel.latest
        if newest <= self._seq:
            return
        touched = channel.touched_since(self._seq)
        if touched is None:  # fell behind the channel's memory: read the feed itself
            touched = _touched(self._open(), self._seq, newest)
        self._seq = newest
        for slot in self._slots.values():
            if slot.served is None or slot.served.name in touched or slot.key.startswith("app="):
                self._refresh(slot, shared=True)
            else:
                slot.applied_seq = newest

    def _all_degraded(self, reason: str) -> None:
        for slot in self._slots.values():
            slot.degraded = _what_serves(slot, reason)

    # ------------------------------------------------------------ swapping

    def _refresh(self, slot: _Slot, *, starting: bool = False, shared: bool = False) -> None:
        """Re-resolve ``slot`` and swap if its target moved. ``shared``: after a change in
        the log, take the target another resolver of this process resolved at the same
        sequence number (a retry or the TTL refresh always asks the registry itself)."""
        seq = self._seq
        try:
            target = self._target(slot.key, shared=shared)
            current = slot.served
            if (
                current is not None
                and current.version == target.version
                and current.name == target.name
            ):
                if current.generation != target.generation or current.source != "registry":
                    self._swap(
                        slot, replace(current, generation=target.generation, source="registry")
                    )
                slot.degraded, slot.failures, slot.applied_seq = None, 0, seq
                return
            served = self._prepare(slot.key, target)
        except RegistryUnavailable as exc:
            self._failed(slot, f"registry unreachable: {exc}", starting=starting)
            return
        except (RegistryError, OSError, TimeoutError) as exc:
            self._failed(slot, str(exc), starting=starting)
            return
        self._swap(slot, served)
        slot.swaps += 0 if starting else 1
        slot.degraded, slot.failures, slot.applied_seq = None, 0, seq
        self._remember(served)

    def _target(self, key: str, *, shared: bool = False) -> Target:
        """What ``key`` points at; with ``shared``, as of the channel's newest sequence
        number, resolved once per process for all the resolvers following the registry."""
        channel, seq = self._channel, self._seq
        if not (shared and channel is not None and channel.error is None and seq > 0):
            target = self._resolve(key)
            if channel is not None:
                channel.targets[key] = (seq, target)
            return target
        with channel.resolving.lock(key):  # one resolves, the others wait and reuse it
            cached = channel.targets.get(key)
            if cached is not None and cached[0] == seq:
                return cached[1]
            target = self._resolve(key)
            channel.targets[key] = (seq, target)
            return target

    def _resolve(self, key: str) -> Target:
        store = self._open()
        if key.startswith("app="):
            app, release = _release_of(key)
            name, version = store.resolve_app_release(app, release)
        else:
            name, ref = key.split("@", 1)
            version = store.resolve(name, ref)
        return Target(name, version, store.get_model(name).generation)

    def _prepare(self, key: str, target: Target) -> Served:
        """Download, verify, load and check ``target``; raise if any of it fails."""
        store = self._open()
        mv = self._version(store, target.name, target.version)
        self._check_signature(mv, self.schema)
        if key.startswith("app="):
            # The release's own schema is what its code sends, whatever it was bound with.
            app, release = _release_of(key)
            self._check_signature(mv, store.get_app_release(app, release).feature_schema)
        model = self._load(mv)
        if not hasattr(model, "predict"):
            raise InvalidInput(f"{mv.name} v{mv.version} loaded, but has no predict()")
        return Served(
            ref=key,
            name=mv.name,
            version=mv.version,
            generation=target.generation,
            signature=mv.signature,
            artifact=mv.artifact,
            model=model,
        )

    def _load(self, mv: ModelVersion) -> Any:
        """The model of ``mv``: downloaded from this region, verified and loaded once per
        process (resolvers in one process share what they loaded from the same object in
        the same region store with the same loader: the same immutable model)."""
        region = self.settings.region_store(self.region)
        key = (region.uri_for(mv.artifact.sha256), mv.artifact.sha256, self.options.loader)
        with _LOADING.lock(key):
            model = _MODELS.get(key)
            # Shared only while the region still holds the bytes (a stat, not a download).
            if model is not None and region.exists(mv.artifact.sha256):
                self._keep_blob(mv.artifact, _BLOBS.get(key))
                return model
            path = self._download(mv)
            try:
                model = self.options.loader(path, mv.artifact)
            except ChecksumMismatch:
                path.unlink(missing_ok=True)  # damaged in our own cache: fetch it again
                model = self.options.loader(self._download(mv), mv.artifact)
            with contextlib.suppress(TypeError):  # no weak references: simply not shared
                _MODELS[key] = model
                _BLOBS[key] = self._blob_path(mv.artifact)
            return model

    def _blob_path(self, ref: ArtifactRef) -> Path:
        return self.cache_dir / "blobs" / f"{ref.sha256}.{ref.format}"

    def _keep_blob(self, ref: ArtifactRef, source: Path | None) -> None:
        """The bytes of a model shared in memory, in this resolver's own disk cache too
        (its last-known-good must be loadable after a restart)."""
        dest = self._blob_path(ref)
        if dest.exists() or source is None or not source.exists():
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, dest)
        except OSError:
            shutil.copyfile(source, dest)

    def _version(self, store: RegistryStore, name: str, version: int) -> ModelVersion:
        """A version's registration metadata (artifact, signature: it never changes), read
        once per channel, i.e. per process and registry while resolvers follow it."""
        channel = self._channel
        if channel is None:
            return store.get_version(name, version)
        with channel.resolving.lock((name, version)):
            found = channel.versions.get((name, version))
            if found is None:
                found = channel.versions[(name, version)] = store.get_version(name, version)
            return found

    def _check_signature(self, mv: ModelVersion, schema: Signature | None) -> None:
        if schema is None:
            return
        if mv.signature is None:
            raise InvalidInput(
                f"refused v{mv.version}: it has no signature to check the serving schema against"
            )
        from registry.release.signature import skew

        report = skew(mv.signature, schema)
        if not report.ok:
            raise InvalidInput(f"refused v{mv.version}: model-code skew: {report.summary()}")

    def _download(self, mv: ModelVersion) -> Path:
        ref = mv.artifact
        dest = self._blob_path(ref)
        if dest.exists():
            return dest
        store = self.settings.region_store(self.region)
        at_region = ref.model_copy(update={"uri": store.uri_for(ref.sha256)})
        future = self._downloads.submit(store.get_file, at_region, dest)
        try:
            return Path(future.result(timeout=self.options.budget_s))
        except FutureTimeout as exc:
            raise TimeoutError(
                f"v{mv.version}: download from {self.region} took over {self.options.budget_s:g}s"
            ) from exc

    def _swap(self, slot: _Slot, served: Served) -> None:
        slot.served = served
        self._served[slot.key] = served

    def _failed(self, slot: _Slot, reason: str, *, starting: bool) -> None:
        slot.failures += 1
        slot.swap_failures += 0 if starting else 1
        slot.retry_at = time.monotonic() + min(0.2 * 2 ** min(slot.failures, 10), MAX_BACKOFF_S)
        if slot.served is None:
            fallback = self._from_disk(slot.key) or self._newest_verifiable(slot.key)
            if fallback is not None:
                self._swap(slot, fallback)
        slot.degraded = reason = _what_serves(slot, reason)
        log.warning("%s degraded: %s", slot.key, reason)

    # ------------------------------------------------------------ last known good

    def _lkg_path(self) -> Path:
        return self.cache_dir / "last-known-good.json"

    def _remember(self, served: Served) -> None:
        path = self._lkg_path()
        try:
            known = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            known = {}
        known[served.ref] = {
            "name": served.name,
            "version": served.version,
            "generation": served.generation,
            "artifact": served.artifact.model_dump(mode="json"),
            "signature": None
            if served.signature is None
            else served.signature.model_dump(mode="json"),
        }
        # Resolvers on one host may share the folder: each writes its own temporary file.
        tmp = path.with_name(f".{path.name}.{self.id}.{uuid.uuid4().hex[:6]}.tmp")
        try:
            with tmp.open("w") as out:
                json.dump(known, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("last-known-good not written: %s", exc)
            tmp.unlink(missing_ok=True)

    def _from_disk(self, key: str) -> Served | None:
        try:
            entry = json.loads(self._lkg_path().read_text()).get(key)
        except (OSError, ValueError):
            return None
        if not entry:
            return None
        try:
            ref = ArtifactRef.model_validate(entry["artifact"])
            signature = (
                None if entry["signature"] is None else Signature.model_validate(entry["signature"])
            )
            path = self.cache_dir / "blobs" / f"{ref.sha256}.{ref.format}"
            model = self.options.loader(path, ref)  # verified again: the disk may lie too
        except (RegistryError, OSError, ValueError, KeyError) as exc:
            log.warning("last-known-good of %s unusable: %s", key, exc)
            return None
        return Served(
            key, entry["name"], entry["version"], entry["generation"], signature, ref, model, "disk"
        )

    def _newest_verifiable(self, key: str) -> Served | None:
        """The newest version that once served in Production whose bytes this region has."""
        if key.startswith("app="):
            return None
        name = key.split("@", 1)[0]
        try:
            from registry.store.pages import model_events

            store = self._open()
            served = [
                e.version
                for e in model_events(store, name, kinds=("stage", "rollback"))
                if e.version is not None
                and (e.kind == "rollback" or e.to_value == Stage.PRODUCTION.value)
            ]
            generation = store.get_model(name).generation
            for version in sorted(set(served), reverse=True):
                try:
                    candidate = self._prepare(key, Target(name, version, generation))
                except (RegistryError, OSError, TimeoutError):
                    continue
                return replace(candidate, source="an older verified version")
        except RegistryError:
            return None
        return None

    # ------------------------------------------------------------ the fleet

    def _heartbeat(self) -> None:
        """Tell the registry what this resolver serves (background; never the hot path)."""
        from registry.models import Heartbeat

        try:
            beat = self._open().heartbeat
        except RegistryError:
            return

        for status in self.status():
            slot = self._slots[status.ref]
            if slot.served is None and status.ref.startswith("app="):
                continue  # an app release nothing serves yet names no model to report under
            name = slot.served.name if slot.served is not None else status.ref.split("@", 1)[0]
            try:
                beat(
                    Heartbeat(
                        resolver_id=f"{self.id}/{status.ref}",
                        model=name,
                        ref=status.ref,
                        region=self.region,
                        host=socket.gethostname(),
                        pid=os.getpid(),
                        version=status.version,
                        generation=status.generation,
                        seq=status.seq,
                        degraded=status.degraded,
                        reason=status.reason,
                        started_at=self._started_at,
                        seen_at=datetime.now(UTC),
                    )
                )
            except RegistryError as exc:
                log.warning("heartbeat not recorded: %s", exc)
                return


# ---------------------------------------------------------------- shared per process

_MODELS: weakref.WeakValueDictionary[tuple[str, str, Loader], Any] = weakref.WeakValueDictionary()


class _KeyLocks:
    """One lock per key, so one resolver loads a model while the others wait for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Any, threading.Lock] = {}

    def lock(self, key: Any) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


_LOADING = _KeyLocks()
_BLOBS: dict[tuple[str, str, Loader], Path] = {}  # where a shared model's verified bytes are


def _touched(store: RegistryStore, since: int, newest: int) -> dict[str, bool]:
    """Models whose pointers moved in ``(since, newest]`` (True: a rollback said invalidate)."""
    touched: dict[str, bool] = {}
    while since < newest:
        batch = store.events(since=since, limit=1000)
        if not batch:
            break
        for event in batch:
            if event.kind in POINTER_KINDS:
                touched[event.model] = touched.get(event.model, False) or event.details.invalidate
        since = batch[-1].seq
    return touched


class _Channel:
    """One watcher of a registry's event log per process, whatever the number of
    resolvers: it polls the newest sequence number (and is woken by a push channel:
    on PostgreSQL the NOTIFY of each event's transaction, on a registry server its
    event stream), keeps the recent pointer events, and wakes every resolver that
    follows this registry. Two hundred resolvers in four processes cost four polls,
    not two hundred; behind a server, they cost the database nothing at all (the
    server reads each change once for all its subscribers)."""

    _all: ClassVar[dict[tuple[str, str, str | None], _Channel]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()
    MEMORY = 10_000

    def __init__(self, settings: Settings, poll_s: float) -> None:
        self.settings = settings
        self.members: set[Resolver] = set()
        self.poll_s = poll_s  # the shortest of its members'
        self.latest = 0
        self.error: str | None = None
        self._recent: deque[tuple[int, str, bool]] = deque(maxlen=self.MEMORY)
        self.targets: dict[str, tuple[int, Target]] = {}  # key -> (seq resolved at, target)
        self.versions: dict[tuple[str, int], ModelVersion] = {}  # immutable: never stale
        self.resolving = _KeyLocks()
        self._floor = 0  # the channel remembers every pointer event after this seq
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._store: RegistryStore | None = None
        self._listening: Any = None
        self._threads: list[threading.Thread] = []

    @classmethod
    def join(cls, resolver: Resolver) -> _Channel:
        key = _channel_key(resolver.settings)
        with cls._guard:
            channel = cls._all.get(key)
            if channel is None:
                channel = cls._all[key] = _Channel(resolver.settings, resolver.options.poll_s)
                channel.latest = channel._floor = resolver._seq
                channel._start()
            channel.members.add(resolver)
            if resolver.options.poll_s < channel.poll_s:
                channel.poll_s = resolver.options.poll_s
                channel._kick.set()  # the watcher may be inside a longer wait
        return channel

    def leave(self, resolver: Resolver) -> None:
        with self._guard:
            self.members.discard(resolver)
            if self.members:
                return
            self._all.pop(_channel_key(self.settings), None)
        self._stop.set()
        self._kick.set()
        if self._listening is not None:
            self._listening.close()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._store is not None:
            self._store.close()

    def touched_since(self, seq: int) -> dict[str, bool] | None:
        if seq < self._floor:
            return None
        touched: dict[str, bool] = {}
        for event_seq, model, invalidate in list(self._recent):
            if event_seq > seq:
                touched[model] = touched.get(model, False) or invalidate
        return touched

    def _start(self) -> None:
        targets = [self._watch]
        if self.settings.registry_url.startswith(_PUSHED):
            targets.append(self._listen)
        for target in targets:
            thread = threading.Thread(target=target, name="modelreg-resolver-feed", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._kick.wait(self.poll_s)
            self._kick.clear()
            if self._stop.is_set():
                return
            was = self.error
            changed = False
            try:
                if self._store is None:
                    self._store = self.settings.connect()
                newest = self._store.latest_seq()
                if newest > self.latest:
                    self._remember(self._store, newest)
                    self.latest = newest
                    changed = True
                self.error = None
            except RegistryError as exc:
                self.error = str(exc)
            except OSError as exc:
                self.error = f"registry unreachable: {exc}"
            if changed or self.error != was:
                for member in list(self.members):
                    member._wake.set()

    def _remember(self, store: RegistryStore, newest: int) -> None:
        since = self.latest
        while since < newest:
            batch = store.events(since=since, limit=1000)
            if not batch:
                break
            for event in batch:
                if event.kind in POINTER_KINDS:
                    if len(self._recent) == self._recent.maxlen:
                        self._floor = self._recent[0][0]
                    self._recent.append((event.seq, event.model, event.details.invalidate))
            since = batch[-1].seq

    def _listen(self) -> None:
        """Wake the watcher on every event pushed (a NOTIFY, or one on the server's event
        stream); reconnect with backoff when the line drops (the poll covers the gap:
        nothing is missed, only heard later)."""
        delay = 0.2
        while not self._stop.is_set():
            try:
                with self._push_channel() as listener:
                    self._listening = listener
                    delay = 0.2
                    self._kick.set()  # read the feed: anything sent while we were away
                    while not self._stop.is_set():  # closed while connecting: stop here
                        for _seq in listener.heard(timeout=1.0):
                            self._kick.set()
            except RegistryError as exc:
                log.warning("event channel unavailable: %s", exc)
            self._stop.wait(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)

    def _push_channel(self) -> EventListener | SseListener:
        url = self.settings.registry_url
        if url.startswith(("http://", "https://")):
            from registry.store.http_feed import SseListener

            return SseListener(url, self.settings.token)
        from registry.store.sql.listen import EventListener

        return EventListener(url)


# Registries that push their events: PostgreSQL (NOTIFY) and a registry server (SSE).
_PUSHED = ("postgresql", "http://", "https://")


def _channel_key(settings: Settings) -> tuple[str, str, str | None]:
    """Resolvers share a channel when they read one registry as one caller (behind a
    server the caller is the token, so two tokens never share what they were shown)."""
    return (settings.registry_url, settings.actor, settings.token)


def _what_serves(slot: _Slot, reason: str) -> str:
    """The degraded reason, saying what keeps serving meanwhile."""
    served = slot.served
    if served is None:
        return reason
    if served.source != "registry":
        return f"serving v{served.version} from {served.source}: {reason}"
    return f"keeping v{served.version}: {reason}"


def parse_ref(ref: str) -> str:
    """``name@ref`` (stage, alias, number, ``latest``) or ``app=A,release=R``, normalised."""
    from registry.models import check_app, check_model_name, check_release

    text = ref.strip()
    if text.startswith("app="):
        app, release = _release_of(text)
        return f"app={check_app(app)},release={check_release(release)}"
    name, sep, pointer = text.partition("@")
    if not sep or not pointer:
        raise InvalidInput(
            f"invalid reference {ref!r}: expected NAME@production, NAME@ALIAS or NAME@VERSION"
        )
    check_model_name(name)
    lowered = pointer.lower()
    return f"{name}@{lowered if lowered in ('production', 'staging', 'latest') else pointer}"


def _release_of(key: str) -> tuple[str, str]:
    parts = dict(p.split("=", 1) for p in key.split(",") if "=" in p)
    if "app" not in parts or "release" not in parts:
        raise InvalidInput(f"invalid app reference {key!r}: expected app=A,release=R")
    return parts["app"], parts["release"]
