"""``ReplicatedStore``: writes to the primary, reads from a read-only replica, and no
read older than what this process already wrote or saw.

A PostgreSQL streaming replica (a hot standby made with ``pg_basebackup -R``) replays
the primary's log a little later than it commits. Every change appends events with a
sequence number in its own transaction, and sequence numbers commit in order, so a
replica whose newest event is ``S`` holds every change up to and including ``S``.

The mark. This process remembers, per primary, the newest sequence number it wrote
(learned from the events its write appended, ``APPENDED``) or read from the log
(``latest_seq``, ``events``). A read goes to the replica only if the replica has
reached the mark; otherwise to the primary. So a pointer read right after a write is
never older than the write, and a follower of the log never reads a replica behind a
sequence number it has already seen (events it skipped would be lost to it).

``ReplicaLag`` keeps what the replica last showed: while that is at or past the mark a
read costs no extra query; when a write moved the mark past it, the next read asks the
replica's ``latest_seq()`` once and reads the primary meanwhile, asking again at most
every ``RECHECK_S``. A replica that cannot be reached (or has no schema yet) is left for
``RETRY_S`` with one warning line; reads go to the primary and never fail while it is up.

Which reads may be answered by the replica is explicit per method (``REPLICA_READS``):
the rows every read there returns are written only with an event, so the mark covers
them. Rows written without an event (replicas, checks, heartbeats, tokens, webhooks, an
app release's creation, subject manifests) and the dry runs of the promotion gate and of
the rollback (``rollback_plan``, which reads replicas and checks) are
read from the primary (``PRIMARY_READS``), as are ``authenticate`` (a revoked token is
refused at once) and ``artifact_references`` (garbage collection must never miss a
version a lagging replica has not replayed yet).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.engine import make_url

from registry.auth import Role, Token
from registry.errors import (
    GateRefused,
    InvalidInput,
    RegistryError,
    RegistryUnavailable,
    SchemaMismatch,
)
from registry.models import (
    AppRelease,
    ArtifactRef,
    Event,
    Heartbeat,
    LineageHit,
    ModelVersion,
    PointerChange,
    RegisteredModel,
    Signature,
    Stage,
    VersionCreate,
)
from registry.release.policy import ApprovalStatus, PolicyRecord, ReleasePolicy
from registry.release_models import Check, Replica, ReplicaState, RollbackPlan
from registry.store.base import RegistryStore
from registry.store.sql.common import APPENDED
from registry.webhooks import Delivery, Webhook

if TYPE_CHECKING:
    from registry.models import ErasureRequest, SubjectLineage, SubjectManifest
    from registry.retention_models import ArtifactReferences, CollectedArtifact, CollectionRecord

log = logging.getLogger("registry.replica")
T = TypeVar("T")

REPLICA_READS = frozenset(
    {
        "get_model",
        "list_models",
        "get_version",
        "list_versions",
        "resolve",
        "get_policy",
        "policy_history",
        "approval_status",
        "resolve_app_release",
        "events",
        "latest_seq",
        "history",
        "production_at",
        "search",
        "lineage_impact",
    }
)
PRIMARY_READS = frozenset(
    {
        "check_promotion",
        "get_app_release",
        "list_app_releases",
        "fleet",
        "replicas",
        "ready_in_regions",
        "checks",
        "latest_checks",
        "list_tokens",
        "authenticate",
        "list_webhooks",
        "webhook_deliveries",
        "subject_manifest",
        "subject_lineage",
        "erasures",
        "artifact_references",
        "rollback_plan",
        "rollback_plans",
    }
)
READ_ONLY_OPTION = "-c default_transaction_read_only=on"


# ---------------------------------------------------------------- what is known


class ReadMark:
    """The newest sequence number a client wrote to, or read from, one primary."""

    def __init__(self, seq: int = 0) -> None:
        self.seq = seq
        self._lock = threading.Lock()

    def raise_to(self, seq: int) -> None:
        if seq > self.seq:
            with self._lock:
                self.seq = max(self.seq, seq)


_MARKS: dict[str, ReadMark] = {}
_MARKS_LOCK = threading.Lock()


def process_mark(primary_url: str) -> ReadMark:
    """This process's mark for one primary, shared by every store opened on it (as
    ``HttpStore`` shares what it has seen of one server), so a resolver never reads
    older than a write made through another store of the same process."""
    with _MARKS_LOCK:
        return _MARKS.setdefault(primary_url, ReadMark())


class MarkFile:
    """Marks kept between processes in one file (the CLI's ``<home>/read-marks.json``):
    each ``modelreg`` command is a process of its own, and one that runs after another's
    write must not read a replica that has not replayed it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, primary_url: str) -> int:
        try:
            value = json.loads(self.path.read_text()).get(display_url(primary_url), 0)
        except (OSError, ValueError, AttributeError):
            return 0  # no file yet, or one that is not ours: start from nothing
        return value if isinstance(value, int) else 0

    def save(self, primary_url: str, seq: int) -> None:
        """Raise the file's mark for ``primary_url`` to ``seq`` (never lower it)."""
        try:
            marks = json.loads(self.path.read_text())
            if not isinstance(marks, dict):
                marks = {}
        except (OSError, ValueError):
            marks = {}
        key = display_url(primary_url)
        if seq <= marks.get(key, 0):
            return
        marks[key] = seq
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            spare = self.path.with_suffix(f".{os.getpid()}.tmp")
            spare.write_text(json.dumps(marks))
            spare.replace(self.path)
        except OSError as exc:  # the next command reads the primary's answer a bit later
            log.warning("cannot keep the read mark in %s: %s", self.path, exc)


class ReplicaLag:
    """What one replica last showed: the newest sequence number it has replayed, and
    whether it is down. Shared by the stores (or server requests) that read it."""

    RECHECK_S = 0.05  # behind the mark: ask again at most this often
    RETRY_S = 1.0  # down: try it again after this long

    def __init__(self, name: str) -> None:
        self.name = name
        self.reached = 0
        self._next_check = 0.0
        self._down_until = 0.0
        self._down = False
        self._lock = threading.Lock()

    def serves(self, need: int, replica: RegistryStore) -> bool:
        """Whether the replica may answer a read that must be at least at ``need``."""
        if self._down and time.monotonic() < self._down_until:
            return False
        if need <= self.reached and not self._down:
            return True
        now = time.monotonic()
        if now < self._next_check:
            return False
        with self._lock:
            self._next_check = now + self.RECHECK_S
        try:
            self.saw(replica.latest_seq())
        except (RegistryUnavailable, SchemaMismatch) as exc:
            self.failed(exc)
            return False
        return need <= self.reached

    def saw(self, seq: int) -> None:
        """The replica answered, at ``seq`` or later."""
        with self._lock:
            if self._down:
                log.info("read replica %s is back: reading it again", self.name)
                self._down = False
            self.reached = max(self.reached, seq)

    def failed(self, exc: Exception) -> None:
        with self._lock:
            if not self._down:
                log.warning(
                    "read replica %s unavailable, reading the primary: %s",
                    self.name,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
            self._down = True
            self._down_until = time.monotonic() + self.RETRY_S
            self._next_check = 0.0


# ---------------------------------------------------------------- opening one


def check_read_url(primary_url: str, read_url: str) -> str:
    """``read_url`` if it can name a read replica of ``primary_url``, else ``InvalidInput``.

    Only PostgreSQL has streaming replicas: a SQLite file has no standby that follows
    it (its readers already scale in WAL mode), and a registry server does its own
    replica reads (``modelreg server --read-registry``)."""
    if not read_url.startswith(("postgresql:", "postgresql+")):
        raise InvalidInput(
            f"unsupported read replica URL {display_url(read_url)!r}: a read replica is a "
            "PostgreSQL standby, postgresql://…"
        )
    if not primary_url.startswith(("postgresql:", "postgresql+")):
        raise InvalidInput(
            "a read replica (--read-registry, MODELREG_READ_URL) needs a postgresql:// "
            f"registry, not {display_url(primary_url)!r}"
        )
    return read_url


def read_only_url(url: str) -> str:
    """``url`` with every transaction read-only: a replica store can never write, even
    if it is pointed at a writable database by mistake."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidInput(f"invalid read replica URL {display_url(url)!r}") from exc
    options = parsed.query.get("options")
    existing = options if isinstance(options, str) else " ".join(options or ())
    merged = f"{existing} {READ_ONLY_OPTION}".strip()
    return parsed.update_query_dict({"options": merged}).render_as_string(hide_password=False)


def display_url(url: str) -> str:
    """A database URL as messages name it: no password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.rsplit("@", maxsplit=1)[-1]


def open_replicated(primary: RegistryStore, read_url: str) -> ReplicatedStore:
    """``primary`` with reads from the replica at ``read_url`` (a lazy connection: a
    replica that is down only sends reads to the primary)."""
    from registry.store.sql import SqlStore

    replica = SqlStore(read_only_url(read_url), actor=primary.actor, migrate=False)
    return ReplicatedStore(primary, replica, lag=ReplicaLag(display_url(read_url)))


# ---------------------------------------------------------------- the store


class ReplicatedStore(RegistryStore):
    """Writes to ``primary``; the reads of ``REPLICA_READS`` from ``replica`` whenever it
    has reached the mark (``mark``: this process's, unless given; ``floor``, asked at each
    read: a lowest mark for this store, such as what a server's follower has applied)."""

    def __init__(
        self,
        primary: RegistryStore,
        replica: RegistryStore,
        *,
        lag: ReplicaLag | None = None,
        mark: ReadMark | None = None,
        floor: Callable[[], int] | None = None,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.lag = lag or ReplicaLag("replica")
        self.url: str = getattr(primary, "url", "")
        self.mark = mark or process_mark(self.url)
        self.floor = floor
        self.actor = primary.actor
        self.origin = primary.origin

    def close(self) -> None:
        try:
            self.replica.close()
        finally:
            self.primary.close()

    # -- routing -----------------------------------------------------------------------
    def _read(self, call: Callable[[RegistryStore], T]) -> T:
        need = self.mark.seq if self.floor is None else max(self.mark.seq, self.floor())
        if self.lag.serves(need, self.replica):
            try:
                return call(self.replica)
            except (RegistryUnavailable, SchemaMismatch) as exc:
                self.lag.failed(exc)
            except RegistryError as exc:
                if type(exc) is not RegistryError:
                    raise  # an answer (NotFound, InvalidInput …): the primary would give it too
                # An unclassified database error, such as a hot standby cancelling a query
                # that conflicts with replay: the primary answers this one.
                log.debug(
                    "read replica %s failed a read, reading the primary: %s", self.lag.name, exc
                )
        return call(self.primary)

    def _primary(self, call: Callable[[RegistryStore], T]) -> T:
        return call(self.primary)

    def _write(self, call: Callable[[RegistryStore], T]) -> T:
        """Run a write on the primary and raise the mark to the events it appended (only
        once it returned: a write that failed committed nothing)."""
        appended = APPENDED.get()
        reset = None
        if appended is None:
            appended = []
            reset = APPENDED.set(appended)
        start = len(appended)
        try:
            result = call(self.primary)
            if len(appended) > start:
                self.mark.raise_to(max(seq for seq, _model in appended[start:]))
            return result
        finally:
            if reset is not None:
                APPENDED.reset(reset)

    # -- models and versions -------------------------------------------------------------
    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        return self._write(lambda s: s.create_model(name, description=description, tags=tags))

    def get_model(self, name: str) -> RegisteredModel:
        return self._read(lambda s: s.get_model(name))

    def list_models(self, *, limit: int = 1000, after: str | None = None) -> list[RegisteredModel]:
        return self._read(lambda s: s.list_models(limit=limit, after=after))

    def register(self, name: str, artifact: ArtifactRef, meta: VersionCreate) -> ModelVersion:
        return self._write(lambda s: s.register(name, artifact, meta))

    def get_version(self, name: str, version: int) -> ModelVersion:
        return self._read(lambda s: s.get_version(name, version))

    def list_versions(
        self,
        name: str,
        *,
        limit: int = 1000,
        stage: Stage | None = None,
        before: int | None = None,
    ) -> list[ModelVersion]:
        return self._read(lambda s: s.list_versions(name, limit=limit, stage=stage, before=before))

    def update_version(
        self,
        name: str,
        version: int,
        *,
        tags: Mapping[str, str | None] | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        return self._write(
            lambda s: s.update_version(name, version, tags=tags, description=description)
        )

    def update_model(
        self,
        name: str,
        *,
        tags: Mapping[str, str | None] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        return self._write(lambda s: s.update_model(name, tags=tags, description=description))

    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        return self._write(lambda s: s.rename_model(name, new_name))

    def delete_version(self, name: str, version: int) -> None:
        self._write(lambda s: s.delete_version(name, version))

    def delete_model(self, name: str) -> None:
        self._write(lambda s: s.delete_model(name))

    # -- pointers --------------------------------------------------------------------------
    def transition(
        self,
        name: str,
        version: int,
        stage: Stage,
        *,
        expected_generation: int | None = None,
        reason: str | None = None,
        force: bool = False,
    ) -> PointerChange:
        return self._write(
            lambda s: s.transition(
                name,
                version,
                stage,
                expected_generation=expected_generation,
                reason=reason,
                force=force,
            )
        )

    def promote(
        self,
        name: str,
        version: int,
        *,
        reason: str | None = None,
        expected_generation: int | None = None,
        force: bool = False,
    ) -> PointerChange:
        return self._write(
            lambda s: s.promote(
                name, version, reason=reason, expected_generation=expected_generation, force=force
            )
        )

    def set_aliases(
        self,
        name: str,
        moves: Mapping[str, int | None],
        *,
        expected_generation: int | None = None,
        reason: str | None = None,
        force: bool = False,
    ) -> PointerChange:
        return self._write(
            lambda s: s.set_aliases(
                name, moves, expected_generation=expected_generation, reason=reason, force=force
            )
        )

    def rollback(
        self,
        name: str,
        *,
        to: int | None = None,
        expected_generation: int | None = None,
        reason: str,
        force: bool = False,
    ) -> PointerChange:
        return self._write(
            lambda s: s.rollback(
                name, to=to, expected_generation=expected_generation, reason=reason, force=force
            )
        )

    def resolve(self, name: str, ref: str | int) -> int:
        return self._read(lambda s: s.resolve(name, ref))

    # -- the release contract --------------------------------------------------------------
    def get_policy(self, name: str) -> PolicyRecord:
        return self._read(lambda s: s.get_policy(name))

    def policy_history(self, name: str, *, limit: int = 1000, after: int = 0) -> list[PolicyRecord]:
        return self._read(lambda s: s.policy_history(name, limit=limit, after=after))

    def set_policy(self, name: str, policy: ReleasePolicy, *, reason: str) -> PolicyRecord:
        return self._write(lambda s: s.set_policy(name, policy, reason=reason))

    def approve(self, name: str, version: int, *, reason: str) -> Check:
        return self._write(lambda s: s.approve(name, version, reason=reason))

    def request_approval(self, name: str, version: int, *, needed: int) -> None:
        self._write(lambda s: s.request_approval(name, version, needed=needed))

    def approval_status(self, name: str, version: int) -> ApprovalStatus:
        return self._read(lambda s: s.approval_status(name, version))

    def check_promotion(self, name: str, version: int, target: str = "Production") -> list[str]:
        return self._primary(lambda s: s.check_promotion(name, version, target))

    def record_refusal(
        self,
        name: str,
        version: int,
        reasons: list[str],
        *,
        gate: str = "pipeline",
        subject: str = "Production",
        reason: str | None = None,
    ) -> GateRefused:
        return self._write(
            lambda s: s.record_refusal(
                name, version, reasons, gate=gate, subject=subject, reason=reason
            )
        )

    def create_app_release(
        self,
        app: str,
        release: str,
        feature_schema: Signature,
        *,
        description: str | None = None,
    ) -> AppRelease:
        return self._write(
            lambda s: s.create_app_release(app, release, feature_schema, description=description)
        )

    def get_app_release(self, app: str, release: str) -> AppRelease:
        return self._primary(lambda s: s.get_app_release(app, release))

    def list_app_releases(
        self, app: str | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[AppRelease]:
        return self._primary(lambda s: s.list_app_releases(app, limit=limit, after=after))

    def bind_app_release(
        self,
        app: str,
        release: str,
        model: str,
        *,
        version: int | None = None,
        follow: str | None = None,
        reason: str | None = None,
        force: bool = False,
    ) -> AppRelease:
        return self._write(
            lambda s: s.bind_app_release(
                app, release, model, version=version, follow=follow, reason=reason, force=force
            )
        )

    def resolve_app_release(
        self, app: str, release: str, model: str | None = None
    ) -> tuple[str, int]:
        return self._read(lambda s: s.resolve_app_release(app, release, model))

    # -- events (what is read of the log raises the mark) -------------------------------
    def events(
        self,
        *,
        since: int = 0,
        limit: int = 1000,
        model: str | None = None,
        kinds: Sequence[str] | None = None,
        before: int | None = None,
        newest: bool = False,
    ) -> list[Event]:
        found = self._read(
            lambda s: s.events(
                since=since, limit=limit, model=model, kinds=kinds, before=before, newest=newest
            )
        )
        if found:  # whichever page it was, its newest event exists: no read may be older
            self.mark.raise_to(max(event.seq for event in found))
        return found

    def latest_seq(self) -> int:
        newest = self._read(lambda s: s.latest_seq())
        self.mark.raise_to(newest)
        return newest

    def history(self, name: str, *, since: int = 0, limit: int = 1000) -> list[Event]:
        return self._read(lambda s: s.history(name, since=since, limit=limit))

    def production_at(self, name: str, at: datetime) -> int | None:
        return self._read(lambda s: s.production_at(name, at))

    # -- queries ----------------------------------------------------------------------------
    def search(
        self, filter_text: str = "", *, limit: int | None = None, offset: int = 0
    ) -> list[ModelVersion]:
        return self._read(lambda s: s.search(filter_text, limit=limit, offset=offset))

    def lineage_impact(
        self,
        *,
        dataset: str | None = None,
        pipeline: str | None = None,
        commit: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[LineageHit]:
        return self._read(
            lambda s: s.lineage_impact(
                dataset=dataset, pipeline=pipeline, commit=commit, limit=limit, offset=offset
            )
        )

    # -- the serving fleet --------------------------------------------------------------------
    def heartbeat(self, beat: Heartbeat) -> None:
        self._write(lambda s: s.heartbeat(beat))

    def fleet(
        self, name: str | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[Heartbeat]:
        return self._primary(lambda s: s.fleet(name, limit=limit, after=after))

    # -- release records ------------------------------------------------------------------------
    def record_replica(
        self,
        name: str,
        version: int,
        region: str,
        state: ReplicaState,
        *,
        uri: str | None = None,
        sha256: str | None = None,
        size: int | None = None,
        error: str | None = None,
    ) -> Replica:
        return self._write(
            lambda s: s.record_replica(
                name, version, region, state, uri=uri, sha256=sha256, size=size, error=error
            )
        )

    def replicas(self, name: str, version: int) -> list[Replica]:
        return self._primary(lambda s: s.replicas(name, version))

    def ready_in_regions(self, name: str, version: int, regions: Sequence[str]) -> list[str]:
        return self._primary(lambda s: s.ready_in_regions(name, version, regions))

    def record_check(
        self,
        name: str,
        version: int,
        kind: str,
        *,
        region: str | None = None,
        passed: bool,
        evidence: Mapping[str, Any],
    ) -> Check:
        return self._write(
            lambda s: s.record_check(
                name, version, kind, region=region, passed=passed, evidence=evidence
            )
        )

    def checks(self, name: str, version: int, kind: str | None = None) -> list[Check]:
        return self._primary(lambda s: s.checks(name, version, kind))

    def latest_checks(self, name: str, version: int, kind: str) -> dict[str | None, Check]:
        return self._primary(lambda s: s.latest_checks(name, version, kind))

    # -- tokens --------------------------------------------------------------------------------
    def create_token(
        self, name: str, role: Role, *, scopes: Sequence[str] = ("*",)
    ) -> tuple[Token, str]:
        return self._write(lambda s: s.create_token(name, role, scopes=scopes))

    def list_tokens(self, *, limit: int = 1000, after: str | None = None) -> list[Token]:
        return self._primary(lambda s: s.list_tokens(limit=limit, after=after))

    def revoke_token(self, name: str) -> Token:
        return self._write(lambda s: s.revoke_token(name))

    def authenticate(self, secret: str) -> Token:
        return self._primary(lambda s: s.authenticate(secret))

    # -- webhooks --------------------------------------------------------------------------------
    def add_webhook(
        self, url: str, events: Sequence[str], *, model: str | None = None
    ) -> tuple[Webhook, str]:
        return self._write(lambda s: s.add_webhook(url, events, model=model))

    def list_webhooks(self, *, limit: int = 1000, after: int = 0) -> list[Webhook]:
        return self._primary(lambda s: s.list_webhooks(limit=limit, after=after))

    def remove_webhook(self, webhook_id: int) -> Webhook:
        return self._write(lambda s: s.remove_webhook(webhook_id))

    def webhook_deliveries(
        self, webhook_id: int, *, since: int = 0, limit: int = 100
    ) -> list[Delivery]:
        return self._primary(lambda s: s.webhook_deliveries(webhook_id, since=since, limit=limit))

    def replay_webhook(self, webhook_id: int, *, from_seq: int) -> int:
        return self._write(lambda s: s.replay_webhook(webhook_id, from_seq=from_seq))

    # -- data subjects -----------------------------------------------------------------
    def record_subject_manifest(
        self, dataset: str, version: str, manifest: ArtifactRef, subjects: Sequence[str]
    ) -> SubjectManifest:
        return self._write(
            lambda s: s.record_subject_manifest(dataset, version, manifest, subjects)
        )

    def subject_manifest(self, dataset: str, version: str) -> SubjectManifest:
        return self._primary(lambda s: s.subject_manifest(dataset, version))

    def subject_lineage(self, subject: str) -> SubjectLineage:
        return self._primary(lambda s: s.subject_lineage(subject))

    def request_erasure(self, subject: str, *, reason: str) -> ErasureRequest:
        return self._write(lambda s: s.request_erasure(subject, reason=reason))

    def justify_erasure(
        self, request_id: int, name: str, version: int, *, reason: str
    ) -> ErasureRequest:
        return self._write(lambda s: s.justify_erasure(request_id, name, version, reason=reason))

    def erasures(
        self,
        *,
        open_only: bool = False,
        model: str | None = None,
        limit: int = 1000,
        after: int = 0,
    ) -> list[ErasureRequest]:
        return self._primary(
            lambda s: s.erasures(open_only=open_only, model=model, limit=limit, after=after)
        )

    # -- retention -----------------------------------------------------------------------
    def artifact_references(self) -> ArtifactReferences:
        return self._primary(lambda s: s.artifact_references())

    def record_collection(
        self, items: Sequence[CollectedArtifact], *, reason: str
    ) -> CollectionRecord:
        return self._write(lambda s: s.record_collection(items, reason=reason))

    # -- the rollback as a dry run: replica rows and checks are written without events --
    def rollback_plan(self, name: str, *, to: int | None = None) -> RollbackPlan:
        return self._primary(lambda s: s.rollback_plan(name, to=to))

    def rollback_plans(
        self, names: Sequence[str] | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[RollbackPlan]:
        return self._primary(lambda s: s.rollback_plans(names, limit=limit, after=after))
