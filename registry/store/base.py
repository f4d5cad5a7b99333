"""The registry store interface: what every backend (SQL, HTTP) provides.

Documented here once; implementations do not repeat these docstrings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from registry.auth import Role, Token
from registry.errors import GateRefused
from registry.models import (
    AppRelease,
    ArtifactRef,
    ErasureRequest,
    Event,
    Heartbeat,
    LineageHit,
    ModelVersion,
    Origin,
    PointerChange,
    RegisteredModel,
    Signature,
    Stage,
    SubjectLineage,
    SubjectManifest,
    VersionCreate,
)
from registry.release.policy import ApprovalStatus, PolicyRecord, ReleasePolicy
from registry.release_models import Check, Replica, ReplicaState, RollbackPlan
from registry.retention_models import ArtifactReferences, CollectedArtifact, CollectionRecord
from registry.webhooks import Delivery, Webhook


class RegistryStore(ABC):
    """Models, versions, pointers (stages and aliases) and the event log.

    Every pointer change is a compare-and-swap on the model's ``generation``:
    pass ``expected_generation`` and a stale value raises ``Conflict`` with
    nothing changed. Every change appends events in the same transaction.

    The release contract holds at this interface, whoever calls it: a move into
    Staging or Production, of a protected alias, or a rollback runs its gate
    (``registry.release.gates``) on facts read in the transaction that would make
    it, under the model's release policy. A refusal is recorded as a ``refused``
    event and raised as ``GateRefused``. ``force=True`` (with a reason) is the
    break-glass: the move is made and its event says it was forced and which gates
    it skipped. Events carry ``origin``, the flow run behind this store, if any.

    A store is a context manager: ``with connect(url) as store: …`` closes it.
    """

    actor: str
    origin: Origin | None = None

    def __enter__(self) -> RegistryStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- models and versions ------------------------------------------------
    @abstractmethod
    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        """Create a registered model; ``Conflict`` if the name exists."""

    @abstractmethod
    def get_model(self, name: str) -> RegisteredModel:
        """The model with its current pointers; ``NotFound`` if absent."""

    @abstractmethod
    def list_models(self, *, limit: int = 1000, after: str | None = None) -> list[RegisteredModel]:
        """Models by name with what serves in Production now, staging, aliases, last
        change: at most ``limit`` (1..10,000, else ``InvalidInput``), those named after
        ``after``. The cursor is a name: the next page is ``after=page[-1].name``."""

    @abstractmethod
    def register(self, name: str, artifact: ArtifactRef, meta: VersionCreate) -> ModelVersion:
        """Register a new version (creating the model on first use).

        The version number is allocated without gaps or duplicates under
        concurrent registrants. Replaying an ``idempotency_key`` returns the
        version it created (``Conflict`` if the artifact differs).
        """

    @abstractmethod
    def get_version(self, name: str, version: int) -> ModelVersion:
        """One version; ``NotFound`` if absent."""

    @abstractmethod
    def list_versions(
        self,
        name: str,
        *,
        limit: int = 1000,
        stage: Stage | None = None,
        before: int | None = None,
    ) -> list[ModelVersion]:
        """At most ``limit`` (1..10,000, else ``InvalidInput``) versions of a model, newest
        first; only those in ``stage`` if given. The cursor is a version number: the next
        page is ``before=page[-1].version`` (versions below it). No other cap."""

    @abstractmethod
    def update_version(
        self,
        name: str,
        version: int,
        *,
        tags: Mapping[str, str | None] | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        """Change the mutable parts of a version (a ``None`` tag value deletes it)."""

    @abstractmethod
    def update_model(
        self,
        name: str,
        *,
        tags: Mapping[str, str | None] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        """Change a model's tags (a ``None`` value deletes one) or description."""

    @abstractmethod
    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a model; ``Conflict`` while a version serves (Production, a protected
        alias, an app release) or if ``new_name`` exists. History follows the model."""

    @abstractmethod
    def delete_version(self, name: str, version: int) -> None:
        """Delete a version that never served; ``Conflict`` for one that serves, is in
        Staging, carries an alias or is bound, or that was ever in Production. Recorded
        in history."""

    @abstractmethod
    def delete_model(self, name: str) -> None:
        """Delete a model none of whose versions serves or ever served (``Conflict``
        otherwise); its history stays in the log, and the name is free again."""

    # -- pointers -------------------------------------------------------------
    @abstractmethod
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
        """Move a version to ``stage`` (None → Staging → Production → Archived).

        Staging passes the policy's metric rules; Production passes the promotion
        gate and archives the previous Production version in the same transaction.
        Moving to the stage it is already in changes nothing.
        """

    @abstractmethod
    def promote(
        self,
        name: str,
        version: int,
        *,
        reason: str | None = None,
        expected_generation: int | None = None,
        force: bool = False,
    ) -> PointerChange:
        """``transition(name, version, Production)``: through the promotion gate."""

    @abstractmethod
    def set_aliases(
        self,
        name: str,
        moves: Mapping[str, int | None],
        *,
        expected_generation: int | None = None,
        reason: str | None = None,
        force: bool = False,
    ) -> PointerChange:
        """Point several aliases at versions (``None`` deletes) in one atomic change.

        A protected alias moves only through the promotion gate (deleting one needs
        ``force``); ``production`` is the Production stage, so setting it promotes."""

    @abstractmethod
    def rollback(
        self,
        name: str,
        *,
        to: int | None = None,
        expected_generation: int | None = None,
        reason: str,
        force: bool = False,
    ) -> PointerChange:
        """Put back the previous Production version (or ``to``, if it once served).

        No canary or health gate, but the target must be verified in every region of
        the policy. The current Production version is archived; one ``rollback``
        event records it, marked ``invalidate`` (resolvers switch at once).
        """

    @abstractmethod
    def resolve(self, name: str, ref: str | int) -> int:
        """A version number for ``ref``: a number, a stage, ``latest`` or an alias."""

    # -- the release contract ---------------------------------------------------
    @abstractmethod
    def get_policy(self, name: str) -> PolicyRecord:
        """The policy in force (version 0 and the default policy if none was set)."""

    @abstractmethod
    def policy_history(self, name: str, *, limit: int = 1000, after: int = 0) -> list[PolicyRecord]:
        """At most ``limit`` (1..10,000) stored policy versions of the model after version
        ``after``, oldest first; the next page is ``after=page[-1].version``."""

    @abstractmethod
    def set_policy(self, name: str, policy: ReleasePolicy, *, reason: str) -> PolicyRecord:
        """Store a new policy version (creating the model if needed); a ``policy`` event."""

    @abstractmethod
    def approve(self, name: str, version: int, *, reason: str) -> Check:
        """Record this store's actor approving a version (``Conflict`` for its registrant)."""

    @abstractmethod
    def request_approval(self, name: str, version: int, *, needed: int) -> None:
        """Log that a release waits for approvals (the event's origin names the run)."""

    @abstractmethod
    def approval_status(self, name: str, version: int) -> ApprovalStatus:
        """How many approvals the policy needs, and who (not the registrant) gave one."""

    @abstractmethod
    def check_promotion(self, name: str, version: int, target: str = "Production") -> list[str]:
        """The promotion gate's reasons now, as a dry run (empty: it would pass)."""

    @abstractmethod
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
        """Record that a release did not go ahead (a ``refused`` event); returns the error."""

    @abstractmethod
    def create_app_release(
        self,
        app: str,
        release: str,
        feature_schema: Signature,
        *,
        description: str | None = None,
    ) -> AppRelease:
        """Declare the feature schema an app release's code sends (``Conflict`` if it exists)."""

    @abstractmethod
    def get_app_release(self, app: str, release: str) -> AppRelease:
        """One app release with its bindings; ``NotFound`` if absent."""

    @abstractmethod
    def list_app_releases(
        self, app: str | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[AppRelease]:
        """At most ``limit`` (1..10,000) app releases (of ``app``) with their bindings, by
        app and then in the order they were created. The cursor is ``APP@RELEASE``: the
        next page is ``after=f"{page[-1].app}@{page[-1].release}"``."""

    @abstractmethod
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
        """Pin ``version`` of ``model`` to the release, or ``follow`` a pointer
        (``production`` or an alias). ``GateRefused`` (recorded) when the version's
        signature does not take what the release sends; a ``binding`` event."""

    @abstractmethod
    def resolve_app_release(
        self, app: str, release: str, model: str | None = None
    ) -> tuple[str, int]:
        """(model, version) the release uses now."""

    # -- events ---------------------------------------------------------------
    @abstractmethod
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
        """Events with ``since < seq`` (and ``seq < before`` if given), of ``model`` (as
        the event names it) and of ``kinds`` if given, oldest first: the change feed.

        At most ``limit`` (1..10,000, else ``InvalidInput``): the oldest ``limit`` of
        them, or with ``newest`` the newest ``limit`` (still returned oldest first).
        Cursors are sequence numbers: page forward with ``since=page[-1].seq``, backward
        with ``before=page[0].seq, newest=True``; a page never shifts as events arrive.
        ``kinds`` must be non-empty and name known kinds (``registry.models.EventKind``;
        ``POINTER_KINDS`` is what ``history`` shows by default).
        """

    @abstractmethod
    def latest_seq(self) -> int:
        """The newest event's sequence number (0 on an empty log): one cheap read.

        A follower that cannot be told about changes (SQLite) polls this and reads
        ``events(since=…)`` only when it moved. On PostgreSQL every event also sends
        ``NOTIFY modelreg_events, '<seq>'`` in its own transaction, so a listener
        (``registry.store.sql.listen.EventListener``) hears it when it commits.
        """

    @abstractmethod
    def history(self, name: str, *, since: int = 0, limit: int = 1000) -> list[Event]:
        """One model's audit trail, oldest first: at most ``limit`` (1..10,000) of its
        events after sequence number ``since``; the next page is ``since=page[-1].seq``.
        It follows the model through renames. ``events(model=name, kinds=…)`` filters by
        kind too; ``registry.store.pages.model_events`` walks every page."""

    @abstractmethod
    def production_at(self, name: str, at: datetime) -> int | None:
        """The version that served in Production at ``at`` (None if none did)."""

    # -- queries --------------------------------------------------------------
    @abstractmethod
    def search(
        self, filter_text: str = "", *, limit: int | None = None, offset: int = 0
    ) -> list[ModelVersion]:
        """Versions matching the filter language of ``registry.search``, in the filter's
        ``order by`` (newest first without one, ties by newest).

        At most ``limit`` (1..10,000, else ``InvalidInput``); with None, the filter's own
        ``limit`` clause, else ``DEFAULT_SEARCH_LIMIT`` (100). ``offset`` (>= 0) is the
        cursor: the next page is ``offset + len(page)``. Versions registered in between
        can shift a newest-first page; an ``order by version`` page does not move.
        """

    @abstractmethod
    def lineage_impact(
        self,
        *,
        dataset: str | None = None,
        pipeline: str | None = None,
        commit: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[LineageHit]:
        """Versions that used a dataset (``name``, ``name@v``, ``name@v1..v2``),
        feature pipeline version or code commit (prefix), and which serve now: live ones
        (``live``, ``why_live``: Production, a protected alias, an app release bound to
        it) first, then by name and version.

        At most ``limit`` (1..10,000, else ``InvalidInput``) from ``offset`` (>= 0) in
        that order: the next page is ``offset + len(page)``; a short page is the last."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    # -- the serving fleet ------------------------------------------------------
    @abstractmethod
    def heartbeat(self, beat: Heartbeat) -> None:
        """Record what one resolver serves now: the row of ``beat.resolver_id`` is
        created or replaced. Not an event: no generation moves, nothing is logged."""

    @abstractmethod
    def fleet(
        self, name: str | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[Heartbeat]:
        """The last heartbeat of at most ``limit`` (1..10,000) resolvers (of model
        ``name``), stale ones too, sorted by model, ref, region and resolver id. The
        cursor is a resolver id: the next page is ``after=page[-1].resolver_id``, and
        holds the resolvers after that one's row in this order."""

    # -- release records: replicas and checks ---------------------------------
    @abstractmethod
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
        """Set the one replica row of (version, region), creating it if needed.

        ``verified`` needs ``sha256`` and ``size`` and stamps ``verified_at``
        with now; any other state clears ``verified_at``. ``error`` is kept as
        one line. ``NotFound`` if the version does not exist.
        """

    @abstractmethod
    def replicas(self, name: str, version: int) -> list[Replica]:
        """The version's replica rows, sorted by region."""

    @abstractmethod
    def ready_in_regions(self, name: str, version: int, regions: Sequence[str]) -> list[str]:
        """The regions (of ``regions``, in that order) where the version is NOT verified
        with its registered sha256 and size: an empty list means ready everywhere.
        ``InvalidInput`` if ``regions`` is empty."""

    @abstractmethod
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
        """Append a check (``health``, ``canary``, ``validation``, ``evaluation``,
        ``promotion`` …) recorded by this store's actor. ``evidence`` must be a JSON
        object with string keys and finite numbers, else ``InvalidInput``."""

    @abstractmethod
    def checks(self, name: str, version: int, kind: str | None = None) -> list[Check]:
        """The version's checks (of one kind, if given), oldest first."""

    @abstractmethod
    def latest_checks(self, name: str, version: int, kind: str) -> dict[str | None, Check]:
        """The newest check of ``kind`` per region (``None``: not region-specific)."""

    # -- a server's callers: tokens ----------------------------------------------
    @abstractmethod
    def create_token(
        self, name: str, role: Role, *, scopes: Sequence[str] = ("*",)
    ) -> tuple[Token, str]:
        """A new bearer token and its secret, shown this once (only its sha256 is kept).
        ``Conflict`` if the name is taken, even by a revoked token."""

    @abstractmethod
    def list_tokens(self, *, limit: int = 1000, after: str | None = None) -> list[Token]:
        """At most ``limit`` (1..10,000) tokens, revoked ones too, by name; the next page
        is ``after=page[-1].name``."""

    @abstractmethod
    def revoke_token(self, name: str) -> Token:
        """Revoke a token: the server refuses it from its next request on."""

    @abstractmethod
    def authenticate(self, secret: str) -> Token:
        """The active token with this secret; ``Unauthenticated`` if unknown or revoked."""

    # -- webhooks -------------------------------------------------------------------
    @abstractmethod
    def add_webhook(
        self, url: str, events: Sequence[str], *, model: str | None = None
    ) -> tuple[Webhook, str]:
        """Subscribe ``url`` to event types (``registry.webhooks.EVENT_TYPES`` or ``*``)
        of every model, one model or a namespace (``ns/*``), from the next event on.
        Returns the subscription and its signing secret, shown this once."""

    @abstractmethod
    def list_webhooks(self, *, limit: int = 1000, after: int = 0) -> list[Webhook]:
        """At most ``limit`` (1..10,000) subscriptions not removed, by id, those after id
        ``after``; the next page is ``after=page[-1].id``."""

    @abstractmethod
    def remove_webhook(self, webhook_id: int) -> Webhook:
        """Stop a subscription; its pending deliveries are dropped."""

    @abstractmethod
    def webhook_deliveries(
        self, webhook_id: int, *, since: int = 0, limit: int = 100
    ) -> list[Delivery]:
        """A subscription's deliveries for events after ``since``, in sequence order."""

    @abstractmethod
    def replay_webhook(self, webhook_id: int, *, from_seq: int) -> int:
        """Deliver again every matching event with ``seq >= from_seq`` (delivered ones
        included); returns how many deliveries were queued."""

    # -- data subjects (GDPR lineage and erasure) ---------------------------------
    @abstractmethod
    def record_subject_manifest(
        self, dataset: str, version: str, manifest: ArtifactRef, subjects: Sequence[str]
    ) -> SubjectManifest:
        """Record that dataset version ``dataset@version`` holds exactly these subject
        keys (``registry.models.check_subject_key``), listed in the content-addressed
        ``manifest`` artifact. The same version with the same manifest sha256 returns
        the stored record; a different sha256 is ``Conflict``. Versions of one dataset
        are recorded in order: a version recorded after a newer one is indexed as the
        newest (its subjects are diffed against the previous manifest recorded)."""

    @abstractmethod
    def subject_manifest(self, dataset: str, version: str) -> SubjectManifest:
        """The manifest recorded for ``dataset@version``; ``NotFound`` if none."""

    @abstractmethod
    def subject_lineage(self, subject: str) -> SubjectLineage:
        """The dataset versions holding the subject key, every model version trained on
        one of them, and which of those serve now (Production, a protected alias of
        the model's policy, an app release) with their open erasure request ids."""

    @abstractmethod
    def request_erasure(self, subject: str, *, reason: str) -> ErasureRequest:
        """Record an erasure obligation for the subject key: one "retrain required"
        item per live version trained on its data, an ``erasure.requested`` event per
        affected model. Such versions (and any other trained on the subject's data,
        unless their item is justified) cannot go to Production, a protected alias or
        an app release. A retrain (``register``) of the model on datasets that all
        carry manifests without the subject closes the item as "retrained"."""

    @abstractmethod
    def justify_erasure(
        self, request_id: int, name: str, version: int, *, reason: str
    ) -> ErasureRequest:
        """Close one item of a request as "justified" with the recorded reason (an
        event); ``NotFound`` for an unknown request or item."""

    @abstractmethod
    def erasures(
        self,
        *,
        open_only: bool = False,
        model: str | None = None,
        limit: int = 1000,
        after: int = 0,
    ) -> list[ErasureRequest]:
        """At most ``limit`` (1..10,000) erasure requests after id ``after``, oldest
        first (only those with an open item; only items of ``model``, and only requests
        that have one): the filters apply before the limit. The next page is
        ``after=page[-1].id``."""

    # -- retention (``modelreg gc``) ---------------------------------------------------
    @abstractmethod
    def artifact_references(self) -> ArtifactReferences:
        """Every artifact digest the registry refers to, read in one snapshot: each
        version's artifact with why the version must stay (``protected``: it ever served
        in Production, is bound by an app release, carries an alias, or is in Staging or
        Production), the digests of every version that ever served, and the subject
        manifests. Admin only on a server: it lists every model."""

    @abstractmethod
    def record_collection(
        self, items: Sequence[CollectedArtifact], *, reason: str
    ) -> CollectionRecord:
        """Log bytes ``modelreg gc`` removed: one ``artifact.collected`` event per item
        (``details``: sha256 and size; ``subject``: the store) on the model whose version
        was registered with that digest, or with the bundle's (``via``), deleted or
        not. Items no registration ever named come back as ``unattributed``."""

    # -- the rollback as a dry run (``modelreg rollback --dry-run``, ``models``) --------
    @abstractmethod
    def rollback_plan(self, name: str, *, to: int | None = None) -> RollbackPlan:
        """What ``rollback(name, to=to)`` would do now, decided by the rollback's own
        code: the version it would restore and why, ``safe`` exactly when it would go
        through (``problems``: its refusal's reasons, word for word), the target's
        replica in each region of the policy, every app release bound to the model and
        whether it can take the target, and the target's latest checks. Changes
        nothing and appends no event; ``NotFound`` for an unknown model."""

    @abstractmethod
    def rollback_plans(
        self, names: Sequence[str] | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[RollbackPlan]:
        """``rollback_plan`` of each named model (at most 10,000 names), by name, in one
        call; without ``names``, of at most ``limit`` (1..10,000) models named after
        ``after`` (the next page is ``after=page[-1].name``). ``why`` names the choice
        without when and by whom the target entered Production (that costs a walk of
        each model's event log)."""
