"""``GuardedStore``: the registry as one verified token may use it.

Every door that serves callers it does not trust (the REST API, the MLflow-compatible
API) hands them this, never the store underneath: each method asks
``registry.auth.authorize`` first and passes the call on only if the token's role and
scope allow it, so a rule cannot be skipped by choosing another endpoint. The store
underneath acts as the token's name, so the event log records the verified actor,
and still runs every release gate itself.

Reads are scoped too (``registry.auth.may_read``): a model outside the token's scopes
is answered as the store answers a model that does not exist (the same ``NotFound``,
never ``Forbidden``, so a scoped token cannot probe for names), and every list drops
what the token may not see before it is cut to its limit. An app release shows only
the bindings of models the token may see, and only if it has one; a webhook, only if
its filter is inside the token's scopes (``registry.auth.may_watch``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from registry.auth import (
    Principal,
    Role,
    Token,
    authorize,
    may_read,
    may_watch,
    reads_everything,
)
from registry.errors import Forbidden, GateRefused, InvalidInput, NotFound
from registry.models import (
    MAX_PAGE,
    AppRelease,
    ArtifactRef,
    ErasureRequest,
    Event,
    Heartbeat,
    LineageHit,
    ModelVersion,
    PointerChange,
    RegisteredModel,
    Signature,
    Stage,
    SubjectLineage,
    SubjectManifest,
    VersionCreate,
    check_id_page,
    check_limit,
    check_model_name,
    check_offset,
    check_plan_names,
)
from registry.release.policy import ApprovalStatus, PolicyRecord, ReleasePolicy
from registry.release_models import Check, Replica, ReplicaState, RollbackPlan
from registry.retention_models import ArtifactReferences, CollectedArtifact, CollectionRecord
from registry.store.base import RegistryStore
from registry.webhooks import Delivery, Webhook

R, DS, DEP, ADMIN = Role.READER, Role.DATA_SCIENTIST, Role.DEPLOYER, Role.ADMIN


class GuardedStore(RegistryStore):
    """``inner`` (already acting as ``who.name``) behind ``who``'s grants."""

    def __init__(self, inner: RegistryStore, who: Principal) -> None:
        self.inner = inner
        self.who = who
        self.actor = inner.actor
        self.origin = inner.origin
        self.everything = reads_everything(who)  # no read to filter: the common case

    def _may(
        self,
        need: Role,
        action: str,
        model: str | None = None,
        pointers: Sequence[str] = (),
        *,
        force: bool = False,
    ) -> None:
        authorize(self.who, ADMIN if force else need, action, model=model, pointers=pointers)

    def may_move_production(self, name: str, *, force: bool = False) -> None:
        """``Forbidden`` unless this caller may promote or roll back ``name``: asked
        before waiting on the model's promotion lock, so a caller who may not move it
        never holds the lock (the move itself asks again)."""
        self._may(DEP, "move Production", name, ("production",), force=force)

    def close(self) -> None:
        """The inner store belongs to whoever made the guard (the server's pool)."""

    # -- what this token may see -----------------------------------------------------
    def sees(self, model: str) -> bool:
        """Whether this token may read ``model`` (``registry.auth.may_read``)."""
        return self.everything or may_read(self.who, model)

    def _visible(self, name: str) -> None:
        """``NotFound`` for a model outside the token's scopes, worded as the store words
        an absent one: the answer depends on the name alone, never on what exists."""
        if not self.sees(name):
            check_model_name(name)  # a malformed name is InvalidInput, as for anyone
            raise NotFound(f"model {name!r} not found")

    def _shown(self, release: AppRelease) -> AppRelease | None:
        """The release with only the bindings this token may see; None if none is left."""
        if self.everything:
            return release
        bindings = tuple(b for b in release.bindings if self.sees(b.model))
        return release.model_copy(update={"bindings": bindings}) if bindings else None

    # -- models and versions ---------------------------------------------------------
    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        self._may(DS, "create a model", name)
        return self.inner.create_model(name, description=description, tags=tags)

    def get_model(self, name: str) -> RegisteredModel:
        self._visible(name)
        return self.inner.get_model(name)

    def list_models(self, *, limit: int = 1000, after: str | None = None) -> list[RegisteredModel]:
        """A scoped token's page holds ``limit`` models it may see when there are that
        many: pages by name are read until it is full (or the models end)."""
        if self.everything:
            return self.inner.list_models(limit=limit, after=after)
        return _filled(
            lambda after: self.inner.list_models(limit=limit, after=after),
            lambda m: m if self.sees(m.name) else None,
            lambda m: m.name,
            limit,
            after,
        )

    def register(self, name: str, artifact: ArtifactRef, meta: VersionCreate) -> ModelVersion:
        self._may(DS, "register a version", name)
        return self.inner.register(name, artifact, meta)

    def get_version(self, name: str, version: int) -> ModelVersion:
        self._visible(name)
        return self.inner.get_version(name, version)

    def list_versions(
        self,
        name: str,
        *,
        limit: int = 1000,
        stage: Stage | None = None,
        before: int | None = None,
    ) -> list[ModelVersion]:
        self._visible(name)
        return self.inner.list_versions(name, limit=limit, stage=stage, before=before)

    def update_version(
        self,
        name: str,
        version: int,
        *,
        tags: Mapping[str, str | None] | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        self._may(DS, "edit tags or descriptions", name)
        return self.inner.update_version(name, version, tags=tags, description=description)

    def update_model(
        self,
        name: str,
        *,
        tags: Mapping[str, str | None] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        self._may(DS, "edit tags or descriptions", name)
        return self.inner.update_model(name, tags=tags, description=description)

    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        self._may(ADMIN, "rename models", name)
        self._may(ADMIN, "rename models", new_name)
        return self.inner.rename_model(name, new_name)

    def delete_version(self, name: str, version: int) -> None:
        self._may(ADMIN, "delete versions", name)
        self.inner.delete_version(name, version)

    def delete_model(self, name: str) -> None:
        self._may(ADMIN, "delete models", name)
        self.inner.delete_model(name)

    # -- pointers --------------------------------------------------------------------
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
        stage = Stage(stage)
        self._may(DEP, f"move a version to {stage}", name, _stage_pointers(stage), force=force)
        return self.inner.transition(
            name,
            version,
            stage,
            expected_generation=expected_generation,
            reason=reason,
            force=force,
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
        self._may(DEP, "promote to Production", name, ("production",), force=force)
        return self.inner.promote(
            name, version, reason=reason, expected_generation=expected_generation, force=force
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
        if not self.sees(name):  # refused before the policy read says whether it exists
            self._may(DS, "move an alias", name, list(moves), force=force)
        policy = self.inner.get_policy(name).policy
        protected = [a for a in moves if a == "production" or policy.is_protected(a)]
        need, what = (DEP, "move a protected alias") if protected else (DS, "move an alias")
        self._may(need, what, name, list(moves), force=force)
        return self.inner.set_aliases(
            name, moves, expected_generation=expected_generation, reason=reason, force=force
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
        self._may(DEP, "roll back", name, ("production",), force=force)
        return self.inner.rollback(
            name, to=to, expected_generation=expected_generation, reason=reason, force=force
        )

    def resolve(self, name: str, ref: str | int) -> int:
        if not self.sees(name):
            check_model_name(name)
            raise NotFound(f"{name}@{ref} does not resolve to a version")
        return self.inner.resolve(name, ref)

    # -- the release contract --------------------------------------------------------
    def get_policy(self, name: str) -> PolicyRecord:
        self._visible(name)
        return self.inner.get_policy(name)

    def policy_history(self, name: str, *, limit: int = 1000, after: int = 0) -> list[PolicyRecord]:
        self._visible(name)
        return self.inner.policy_history(name, limit=limit, after=after)

    def set_policy(self, name: str, policy: ReleasePolicy, *, reason: str) -> PolicyRecord:
        self._may(ADMIN, "change a release policy", name)
        return self.inner.set_policy(name, policy, reason=reason)

    def approve(self, name: str, version: int, *, reason: str) -> Check:
        self._may(DEP, "approve a release", name)
        return self.inner.approve(name, version, reason=reason)

    def request_approval(self, name: str, version: int, *, needed: int) -> None:
        self._may(DEP, "request approvals", name)
        self.inner.request_approval(name, version, needed=needed)

    def approval_status(self, name: str, version: int) -> ApprovalStatus:
        self._visible(name)
        return self.inner.approval_status(name, version)

    def check_promotion(self, name: str, version: int, target: str = "Production") -> list[str]:
        self._visible(name)
        return self.inner.check_promotion(name, version, target)

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
        self._may(DS, "record a refusal", name)
        return self.inner.record_refusal(
            name, version, reasons, gate=gate, subject=subject, reason=reason
        )

    def create_app_release(
        self,
        app: str,
        release: str,
        feature_schema: Signature,
        *,
        description: str | None = None,
    ) -> AppRelease:
        self._may(DEP, "declare an app release")
        return self.inner.create_app_release(app, release, feature_schema, description=description)

    def get_app_release(self, app: str, release: str) -> AppRelease:
        shown = self._shown(self.inner.get_app_release(app, release))
        if shown is None:
            raise NotFound(f"app release {app}@{release} not found")
        return shown

    def list_app_releases(
        self, app: str | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[AppRelease]:
        """A scoped token's page holds releases that bind a model it may see, each with
        only those bindings: pages are read until it is full (or the releases end)."""
        if self.everything:
            return self.inner.list_app_releases(app, limit=limit, after=after)
        return _filled(
            lambda after: self.inner.list_app_releases(app, limit=limit, after=after),
            self._shown,
            lambda r: f"{r.app}@{r.release}",
            limit,
            after,
        )

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
        self._may(DEP, "bind an app release", model, force=force)
        bound = self.inner.bind_app_release(
            app, release, model, version=version, follow=follow, reason=reason, force=force
        )
        return self._shown(bound) or bound  # it binds ``model``, which this token sees

    def resolve_app_release(
        self, app: str, release: str, model: str | None = None
    ) -> tuple[str, int]:
        if self.everything:
            return self.inner.resolve_app_release(app, release, model)
        bound = self.get_app_release(app, release).bindings  # the ones this token sees
        if model is None and len(bound) > 1:
            names = ", ".join(b.model for b in bound)
            raise InvalidInput(f"app release {app}@{release} binds {names}: name the model")
        if model is None:
            model = bound[0].model
        elif not self.sees(model):
            raise NotFound(f"app release {app}@{release} has no binding for model {model!r}")
        return self.inner.resolve_app_release(app, release, model)

    # -- events and queries ----------------------------------------------------------
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
        """A scoped token's page holds ``limit`` events it may see when the log has
        them: pages of the whole log are read until it is full (or the log ends),
        forward from ``since``, or with ``newest`` backward from ``before``."""
        page = functools.partial(self.inner.events, kinds=kinds, newest=newest)
        if self.everything or model is not None:
            found = page(since=since, limit=limit, model=model, before=before)
            return found if model is None or self.sees(model) else []
        if newest:
            return self._newest_seen(page, since, limit, before)
        seen: list[Event] = []
        while True:
            found = page(since=since, limit=limit, before=before)
            seen += [e for e in found if self.sees(e.model)]
            if len(seen) >= limit or len(found) < limit:
                return seen[:limit]
            since = found[-1].seq

    def _newest_seen(
        self, page: Callable[..., list[Event]], since: int, limit: int, before: int | None
    ) -> list[Event]:
        """The newest ``limit`` visible events in the range: pages walked backward, each
        ending where the one before (newer) began, oldest first."""
        seen: list[Event] = []  # newest first while walking
        while True:
            found = page(since=since, limit=limit, before=before)
            seen += [e for e in reversed(found) if self.sees(e.model)]
            if len(seen) >= limit or len(found) < limit:
                return seen[:limit][::-1]
            before = found[0].seq

    def latest_seq(self) -> int:
        return self.inner.latest_seq()

    def history(self, name: str, *, since: int = 0, limit: int = 1000) -> list[Event]:
        self._visible(name)
        return self.inner.history(name, since=since, limit=limit)

    def production_at(self, name: str, at: datetime) -> int | None:
        self._visible(name)
        return self.inner.production_at(name, at)

    def search(
        self, filter_text: str = "", *, limit: int | None = None, offset: int = 0
    ) -> list[ModelVersion]:
        """A scoped token's filter is narrowed to its models in the query itself, so
        ``limit`` (the call's or the filter's) and ``offset`` count only versions it may
        see."""
        if not self.everything:
            from registry.search import within

            filter_text = within(filter_text, [s.model for s in self.who.scopes])
        return self.inner.search(filter_text, limit=limit, offset=offset)

    def lineage_impact(
        self,
        *,
        dataset: str | None = None,
        pipeline: str | None = None,
        commit: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[LineageHit]:
        """A scoped token's ``offset`` and ``limit`` count only hits it may see: the
        store's pages (in the same order) are read until the page is full or they end."""
        page = functools.partial(
            self.inner.lineage_impact, dataset=dataset, pipeline=pipeline, commit=commit
        )
        if self.everything:
            return page(limit=limit, offset=offset)
        check_limit(limit)
        check_offset(offset)
        seen: list[LineageHit] = []
        read = 0
        while True:
            found = page(limit=MAX_PAGE, offset=read)
            seen += [h for h in found if self.sees(h.name)]
            read += len(found)
            if len(seen) >= offset + limit or len(found) < MAX_PAGE:
                return seen[offset : offset + limit]

    # -- the serving fleet -----------------------------------------------------------
    def heartbeat(self, beat: Heartbeat) -> None:
        self._may(R, "report a heartbeat")
        self.inner.heartbeat(beat)

    def fleet(
        self, name: str | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[Heartbeat]:
        if self.everything:
            return self.inner.fleet(name, limit=limit, after=after)
        return _filled(
            lambda after: self.inner.fleet(name, limit=limit, after=after),
            lambda b: b if self.sees(b.model) else None,
            lambda b: b.resolver_id,
            limit,
            after,
        )

    # -- release records -------------------------------------------------------------
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
        self._may(DEP, "record a replica", name)
        return self.inner.record_replica(
            name, version, region, state, uri=uri, sha256=sha256, size=size, error=error
        )

    def replicas(self, name: str, version: int) -> list[Replica]:
        self._visible(name)
        return self.inner.replicas(name, version)

    def ready_in_regions(self, name: str, version: int, regions: Sequence[str]) -> list[str]:
        self._visible(name)
        return self.inner.ready_in_regions(name, version, regions)

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
        self._may(DEP, "record a release check", name)
        return self.inner.record_check(
            name, version, kind, region=region, passed=passed, evidence=evidence
        )

    def checks(self, name: str, version: int, kind: str | None = None) -> list[Check]:
        self._visible(name)
        return self.inner.checks(name, version, kind)

    def latest_checks(self, name: str, version: int, kind: str) -> dict[str | None, Check]:
        self._visible(name)
        return self.inner.latest_checks(name, version, kind)

    # -- tokens and webhooks: admin only, and never readable by anyone else ------------
    # Tokens need an unscoped admin. Webhooks need an admin whose scopes hold the
    # webhook's filter: a ``payments/*`` admin keeps payments webhooks, and sees no other.
    def create_token(
        self, name: str, role: Role, *, scopes: Sequence[str] = ("*",)
    ) -> tuple[Token, str]:
        self._may(ADMIN, "create tokens")
        return self.inner.create_token(name, role, scopes=scopes)

    def list_tokens(self, *, limit: int = 1000, after: str | None = None) -> list[Token]:
        self._may(ADMIN, "list tokens")
        return self.inner.list_tokens(limit=limit, after=after)

    def revoke_token(self, name: str) -> Token:
        self._may(ADMIN, "revoke tokens")
        return self.inner.revoke_token(name)

    def authenticate(self, secret: str) -> Token:
        return self.inner.authenticate(secret)

    def add_webhook(
        self, url: str, events: Sequence[str], *, model: str | None = None
    ) -> tuple[Webhook, str]:
        self._may_webhooks("add webhooks")
        if not may_watch(self.who, model):
            raise Forbidden(
                f"token {self.who.name!r} may not add a webhook on {model or '*'}: its grant "
                f"is scoped to {', '.join(str(s) for s in self.who.scopes)}"
            )
        return self.inner.add_webhook(url, events, model=model)

    def list_webhooks(self, *, limit: int = 1000, after: int = 0) -> list[Webhook]:
        self._may_webhooks("list webhooks")
        return _filled(
            lambda after: self.inner.list_webhooks(limit=limit, after=after),
            lambda w: w if may_watch(self.who, w.model) else None,
            lambda w: w.id,
            limit,
            after,
        )

    def remove_webhook(self, webhook_id: int) -> Webhook:
        self._may_webhook(webhook_id, "remove webhooks")
        return self.inner.remove_webhook(webhook_id)

    def webhook_deliveries(
        self, webhook_id: int, *, since: int = 0, limit: int = 100
    ) -> list[Delivery]:
        self._may_webhook(webhook_id, "read webhook deliveries")
        return self.inner.webhook_deliveries(webhook_id, since=since, limit=limit)

    def replay_webhook(self, webhook_id: int, *, from_seq: int) -> int:
        self._may_webhook(webhook_id, "replay webhooks")
        return self.inner.replay_webhook(webhook_id, from_seq=from_seq)

    def _may_webhooks(self, action: str) -> None:
        """The admin role, scoped or not: which webhooks is ``may_watch``'s."""
        if self.who.role.rank < ADMIN.rank:
            self._may(ADMIN, action)  # raises, worded as every role refusal

    def _may_webhook(self, webhook_id: int, action: str) -> None:
        """An admin whose scopes hold the webhook's filter. To any other admin the
        webhook does not exist (``NotFound`` as for an unknown id), so a scoped admin
        cannot reach a removed webhook either: only live ones are listed."""
        self._may_webhooks(action)
        if may_watch(self.who, None):
            return
        found = self.inner.list_webhooks(limit=1, after=max(int(webhook_id) - 1, 0))
        if not (found and found[0].id == webhook_id and may_watch(self.who, found[0].model)):
            raise NotFound(f"no webhook {webhook_id}")

    # -- data subjects: manifests are data scientists' records, erasure is an admin's --
    def record_subject_manifest(
        self, dataset: str, version: str, manifest: ArtifactRef, subjects: Sequence[str]
    ) -> SubjectManifest:
        self._may(DS, "record a subject manifest")
        return self.inner.record_subject_manifest(dataset, version, manifest, subjects)

    def subject_manifest(self, dataset: str, version: str) -> SubjectManifest:
        return self.inner.subject_manifest(dataset, version)

    def subject_lineage(self, subject: str) -> SubjectLineage:
        """Datasets are registry-wide; the model versions are only those this token sees."""
        lineage = self.inner.subject_lineage(subject)
        if self.everything:
            return lineage
        versions = tuple(v for v in lineage.versions if self.sees(v.name))
        return lineage.model_copy(update={"versions": versions})

    def request_erasure(self, subject: str, *, reason: str) -> ErasureRequest:
        self._may(ADMIN, "request an erasure")
        return self.inner.request_erasure(subject, reason=reason)

    def justify_erasure(
        self, request_id: int, name: str, version: int, *, reason: str
    ) -> ErasureRequest:
        self._may(ADMIN, "justify keeping a version under erasure", name)
        return self.inner.justify_erasure(request_id, name, version, reason=reason)

    def erasures(
        self,
        *,
        open_only: bool = False,
        model: str | None = None,
        limit: int = 1000,
        after: int = 0,
    ) -> list[ErasureRequest]:
        page = functools.partial(self.inner.erasures, open_only=open_only, model=model)
        if self.everything:
            return page(limit=limit, after=after)
        if model is not None and not self.sees(model):
            check_model_name(model)
            check_id_page(limit, after)
            return []

        def shown(request: ErasureRequest) -> ErasureRequest | None:
            # A request is seen through the versions it flags in the token's scopes, and
            # is open to the token only if one of those still needs a retrain.
            items = tuple(i for i in request.items if self.sees(i.name))
            mine = request.model_copy(update={"items": items})
            return mine if items and (mine.open or not open_only) else None

        return _filled(lambda after: page(limit=limit, after=after), shown, _id, limit, after)

    # -- retention: admin only (the listing names every model's artifacts) --------------
    def artifact_references(self) -> ArtifactReferences:
        self._may(ADMIN, "list artifact references")
        return self.inner.artifact_references()

    def record_collection(
        self, items: Sequence[CollectedArtifact], *, reason: str
    ) -> CollectionRecord:
        self._may(ADMIN, "record artifact collections")
        return self.inner.record_collection(items, reason=reason)

    # -- the rollback as a dry run: a read, scoped like the others -----------------------
    def rollback_plan(self, name: str, *, to: int | None = None) -> RollbackPlan:
        self._visible(name)
        return self.inner.rollback_plan(name, to=to)

    def rollback_plans(
        self, names: Sequence[str] | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[RollbackPlan]:
        wanted = check_plan_names(names, limit, after)
        if wanted is not None:
            for name in wanted:
                self._visible(name)
            return self.inner.rollback_plans(wanted)
        if self.everything:
            return self.inner.rollback_plans(limit=limit, after=after)
        return _filled(
            lambda after: self.inner.rollback_plans(limit=limit, after=after),
            lambda p: p if self.sees(p.name) else None,
            lambda p: p.name,
            limit,
            after,
        )


T = TypeVar("T")
C = TypeVar("C")


def _filled(
    fetch: Callable[[C], list[T]],
    shown: Callable[[T], T | None],
    cursor: Callable[[T], C],
    limit: int,
    after: C,
) -> list[T]:
    """A scoped token's page: ``limit`` items it may see (``shown`` gives each as the
    token sees it, or None) when there are that many. The store's pages are read in
    order, each after the last one read, until the page is full or they end; the
    cursor of the page is then that of its last item, in the store's own order."""
    seen: list[T] = []
    while True:
        found = fetch(after)
        seen += [item for item in map(shown, found) if item is not None]
        if len(seen) >= limit or len(found) < limit:
            return seen[:limit]
        after = cursor(found[-1])


def _id(request: ErasureRequest) -> int:
    return request.id


def _stage_pointers(stage: Stage) -> tuple[str, ...]:
    """The pointer a stage change moves, as scopes name it. Leaving Production (to
    Archived) moves ``production`` too, so archiving needs that grant as well."""
    if stage is Stage.ARCHIVED:
        return ("archived", "production")
    return (str(stage.value).lower(),)
