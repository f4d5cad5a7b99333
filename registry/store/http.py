"""``HttpStore``: the registry store over the registry server's REST API.

The same interface as ``SqlStore`` (``registry.store.base``), so the CLI, the
pipeline and the Python API work against ``http://…`` as against a database URL.
One keep-alive ``httpx.Client`` per store; every request carries the bearer token and,
when the store has one, the flow run behind it (``X-Modelreg-Origin``).

Outages. Connection errors, timeouts and 502/503/504 are retried with exponential
backoff and full jitter. A write keeps trying for ``write_budget_s`` (30 s by
default): each carries an ``Idempotency-Key`` that stays the same across its retries,
so a retry after a lost reply gets the first reply instead of a second change. A
registration carries its key in ``meta.idempotency_key`` instead (set here when the
caller did not), where the store dedups in the registering transaction. A read fails
fast (one quick retry within ``read_budget_s``) so a command says at once that the
server is unreachable, naming its URL.

Error replies become the registry's error types in one place, ``error_of``.

Reading your own writes. A server process may answer a resolve from memory, which
lags the log by up to its follower's poll. Every write's reply names the newest
sequence number it wrote (``X-Modelreg-Seq``), and the feed and the log name theirs;
this process remembers the newest it has seen of each server and sends it with every
read (``X-Modelreg-Min-Seq``), so no answer is older than something already seen:
a resolver that heard of a promotion on the event stream resolves the new version,
whichever server process answers.
"""

from __future__ import annotations

import functools
import json
import random
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from registry.auth import Role, Token
from registry.errors import (
    ArtifactError,
    Conflict,
    Forbidden,
    GateRefused,
    InvalidInput,
    NotFound,
    RegistryError,
    RegistryUnavailable,
    ReleaseCheckFailed,
    StorageError,
    Unauthenticated,
)
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
    check_dataset_version,
    check_erasure_request_id,
    check_event_kinds,
    check_event_page,
    check_id_page,
    check_limit,
    check_model_name,
    check_model_page,
    check_name_page,
    check_offset,
    check_plan_names,
    check_search_page,
    check_subject_key,
    check_version,
    check_version_page,
)
from registry.release.policy import ApprovalStatus, PolicyRecord, ReleasePolicy
from registry.release_models import Check, Replica, ReplicaState, RollbackPlan
from registry.retention_models import ArtifactReferences, CollectedArtifact, CollectionRecord
from registry.store.base import RegistryStore
from registry.webhooks import Delivery, Webhook

T = TypeVar("T")

API = "/api/v1"
ORIGIN_HEADER = "X-Modelreg-Origin"
TIMEOUT_S = 30.0  # one request's read, write and pool timeouts
CONNECT_TIMEOUT_S = 2.0
WRITE_BUDGET_S = 30.0  # how long a write keeps retrying through an outage
READ_BUDGET_S = 1.0  # a read: one quick retry, then the caller hears the server is down
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 2.0
RETRIED = frozenset({502, 503, 504})
SEQ_HEADER = "x-modelreg-seq"
MIN_SEQ_HEADER = "X-Modelreg-Min-Seq"
# The newest event sequence number this process has seen, per server API base URL.
_SEEN: dict[str, int] = {}
# 503s that say the database refused for good (full disk, damaged file): not worth a retry.
FINAL_503_CODES = frozenset({"storage_error", "artifact_error"})

_BY_STATUS: dict[int, type[RegistryError]] = {
    400: InvalidInput,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    405: InvalidInput,
    409: Conflict,
    413: InvalidInput,
    415: InvalidInput,
    422: InvalidInput,
}


class HttpStore(RegistryStore):
    """The registry at a ``modelreg server`` URL, as the token's name."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        actor_hint: str | None = None,
        origin: Origin | None = None,
        timeout: float = TIMEOUT_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        write_budget_s: float = WRITE_BUDGET_S,
        read_budget_s: float = READ_BUDGET_S,
    ) -> None:
        self.url = _display(url)
        self.origin = origin
        self.actor_hint = actor_hint
        self.write_budget_s = write_budget_s
        self.read_budget_s = read_budget_s
        self._actor: str | None = None
        self._base = _api_base(url)
        headers = {"Accept": "application/json", "User-Agent": "modelreg"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=self._base,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            verify=_tls_context(),
        )

    # -- who this store acts as ----------------------------------------------------------
    @property
    def actor(self) -> str:
        """The token's name, as the server verified it (asked once, on first use). Before
        the server has answered, ``actor_hint`` stands in if one was given."""
        if self._actor is None:
            try:
                self._actor = str(self.whoami()["name"])
            except RegistryUnavailable:
                if self.actor_hint is None:
                    raise
                return self.actor_hint
        return self._actor

    @actor.setter
    def actor(self, value: str) -> None:
        self._actor = value

    def whoami(self) -> dict[str, Any]:
        """The verified caller: ``{"name", "role", "scopes"}``."""
        found: dict[str, Any] = self._get("/whoami")
        return found

    def close(self) -> None:
        self._client.close()

    # -- models and versions -------------------------------------------------------------
    def create_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        body = {"name": name, "description": description, "tags": dict(tags or {})}
        return _as(RegisteredModel, self._write("POST", "/models", body))

    def get_model(self, name: str) -> RegisteredModel:
        return _as(RegisteredModel, self._get(f"/models/{_name(name)}"))

    def list_models(self, *, limit: int = 1000, after: str | None = None) -> list[RegisteredModel]:
        check_model_page(limit, after)
        query: dict[str, Any] = {"limit": limit}
        if after is not None:
            query["after"] = after
        return _list(RegisteredModel, self._get("/models", query))

    def register(self, name: str, artifact: ArtifactRef, meta: VersionCreate) -> ModelVersion:
        meta = VersionCreate.parse(meta)
        if meta.idempotency_key is None:
            # Chosen before the first attempt: a retry after a lost reply then
            # returns the version the first attempt made instead of making another.
            meta = meta.model_copy(update={"idempotency_key": f"http-{uuid.uuid4().hex}"})
        if not isinstance(artifact, ArtifactRef):
            raise InvalidInput(f"an artifact must be an ArtifactRef, got {type(artifact).__name__}")
        body = {
            "artifact": artifact.model_dump(mode="json"),
            "meta": meta.model_dump(mode="json", exclude_defaults=True),
        }
        reply = self._write("POST", f"/versions/{_name(name)}", body, keyed=False)
        return _as(ModelVersion, reply)

    def get_version(self, name: str, version: int) -> ModelVersion:
        return _as(ModelVersion, self._get(f"/versions/{_at(name, version)}"))

    def list_versions(
        self,
        name: str,
        *,
        limit: int = 1000,
        stage: Stage | None = None,
        before: int | None = None,
    ) -> list[ModelVersion]:
        check_version_page(limit, stage, before)
        query: dict[str, Any] = {"limit": limit}
        if stage is not None:
            query["stage"] = Stage.parse(str(stage)).value
        if before is not None:
            query["before"] = before
        return _list(ModelVersion, self._get(f"/versions/{_name(name)}", query))

    def update_version(
        self,
        name: str,
        version: int,
        *,
        tags: Mapping[str, str | None] | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        body = {"tags": None if tags is None else dict(tags), "description": description}
        return _as(ModelVersion, self._write("PATCH", f"/versions/{_at(name, version)}", body))

    # -- pointers ------------------------------------------------------------------------
    def update_model(
        self,
        name: str,
        *,
        tags: Mapping[str, str | None] | None = None,
        description: str | None = None,
    ) -> RegisteredModel:
        body = {"tags": dict(tags) if tags is not None else None, "description": description}
        return _as(RegisteredModel, self._write("PATCH", f"/models/{_name(name)}", body))

    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        body = {"new_name": new_name}
        return _as(RegisteredModel, self._write("POST", f"/rename/{_name(name)}", body))

    def delete_version(self, name: str, version: int) -> None:
        self._write("DELETE", f"/versions/{_at(name, version)}")

    def delete_model(self, name: str) -> None:
        self._write("DELETE", f"/models/{_name(name)}")

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
        body = {
            "stage": Stage(stage).value,
            "expected_generation": expected_generation,
            "reason": reason,
            "force": force,
        }
        return _as(PointerChange, self._write("PUT", f"/stage/{_at(name, version)}", body))

    def promote(
        self,
        name: str,
        version: int,
        *,
        reason: str | None = None,
        expected_generation: int | None = None,
        force: bool = False,
    ) -> PointerChange:
        return self.transition(
            name,
            version,
            Stage.PRODUCTION,
            expected_generation=expected_generation,
            reason=reason,
            force=force,
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
        body = {
            "moves": dict(moves),
            "expected_generation": expected_generation,
            "reason": reason,
            "force": force,
        }
        return _as(PointerChange, self._write("PATCH", f"/aliases/{_name(name)}", body))

    def rollback(
        self,
        name: str,
        *,
        to: int | None = None,
        expected_generation: int | None = None,
        reason: str,
        force: bool = False,
    ) -> PointerChange:
        body = {
            "to": to,
            "expected_generation": expected_generation,
            "reason": reason,
            "force": force,
        }
        return _as(PointerChange, self._write("POST", f"/rollback/{_name(name)}", body))

    def resolve(self, name: str, ref: str | int) -> int:
        seen = _SEEN.get(self._base, 0)
        headers = {MIN_SEQ_HEADER: str(seen)} if seen else None
        return int(self._get(f"/resolve/{_at(name, ref)}", headers=headers)["version"])

    # -- the release contract --------------------------------------------------------------
    def get_policy(self, name: str) -> PolicyRecord:
        return _policy_record(self._get(f"/policy/{_name(name)}"))

    def policy_history(self, name: str, *, limit: int = 1000, after: int = 0) -> list[PolicyRecord]:
        check_id_page(limit, after)
        query = {"limit": limit, "after": after}
        return [_policy_record(r) for r in self._get(f"/policy-history/{_name(name)}", query)]

    def set_policy(self, name: str, policy: ReleasePolicy, *, reason: str) -> PolicyRecord:
        body = {"policy": ReleasePolicy.parse(policy).to_document(), "reason": reason}
        return _policy_record(self._write("PUT", f"/policy/{_name(name)}", body))

    def approve(self, name: str, version: int, *, reason: str) -> Check:
        reply = self._write("POST", f"/approvals/{_at(name, version)}", {"reason": reason})
        return _as(Check, reply)

    def request_approval(self, name: str, version: int, *, needed: int) -> None:
        self._write("POST", f"/approval-requests/{_at(name, version)}", {"needed": needed})

    def approval_status(self, name: str, version: int) -> ApprovalStatus:
        return _as(ApprovalStatus, self._get(f"/approvals/{_at(name, version)}"))

    def check_promotion(self, name: str, version: int, target: str = "Production") -> list[str]:
        found = self._get(f"/promotion-check/{_at(name, version)}", {"target": target})
        return [str(reason) for reason in found["reasons"]]

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
        body = {"reasons": list(reasons), "gate": gate, "subject": subject, "reason": reason}
        reply = self._write("POST", f"/refusals/{_at(name, version)}", body)
        return GateRefused(str(reply["message"]), tuple(reply["reasons"]))

    def create_app_release(
        self,
        app: str,
        release: str,
        feature_schema: Signature,
        *,
        description: str | None = None,
    ) -> AppRelease:
        body = {
            "app": app,
            "release": release,
            "feature_schema": Signature.model_validate(feature_schema).model_dump(mode="json"),
            "description": description,
        }
        return _as(AppRelease, self._write("POST", "/app-releases", body))

    def get_app_release(self, app: str, release: str) -> AppRelease:
        return _as(AppRelease, self._get(f"/app-releases/{_release(app, release)}"))

    def list_app_releases(
        self, app: str | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[AppRelease]:
        check_name_page(limit, after, "an app release (APP@RELEASE)")
        return _list(AppRelease, self._get("/app-releases", _page(limit, after, app=app)))

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
        body = {"version": version, "follow": follow, "reason": reason, "force": force}
        path = f"/app-releases/{_release(app, release)}/bindings/{_name(model)}"
        return _as(AppRelease, self._write("PUT", path, body))

    def resolve_app_release(
        self, app: str, release: str, model: str | None = None
    ) -> tuple[str, int]:
        query = {} if model is None else {"model": model}
        found = self._get(f"/app-releases/{_release(app, release)}/resolve", query)
        return str(found["name"]), int(found["version"])

    # -- events and queries ------------------------------------------------------------
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
        check_event_page(since, limit, before)
        query: dict[str, Any] = {"since": since, "limit": limit}
        if model is not None:
            query["model"] = model
        if kinds is not None:
            query["kinds"] = ",".join(check_event_kinds(kinds))
        if before is not None:
            query["before"] = before
        if newest:
            query["newest"] = "true"
        events = _list(Event, self._get("/events", query))
        if events:
            self._saw(events[-1].seq)
        return events

    def latest_seq(self) -> int:
        seq = int(self._get("/events/latest")["seq"])
        self._saw(seq)
        return seq

    def history(self, name: str, *, since: int = 0, limit: int = 1000) -> list[Event]:
        check_event_page(since, limit, None)
        query = {"since": since, "limit": limit}
        return _list(Event, self._get(f"/history/{_name(name)}", query))

    def production_at(self, name: str, at: datetime) -> int | None:
        if at.tzinfo is None:
            raise InvalidInput("the time must include a timezone (or be given as UTC)")
        found = self._get(f"/production-at/{_name(name)}", {"at": at.isoformat()})
        return None if found["version"] is None else int(found["version"])

    def search(
        self, filter_text: str = "", *, limit: int | None = None, offset: int = 0
    ) -> list[ModelVersion]:
        check_search_page(limit, offset)
        query: dict[str, Any] = {"filter": filter_text}
        if limit is not None:
            query["limit"] = limit
        if offset:
            query["offset"] = offset
        return _list(ModelVersion, self._get("/search", query))

    def lineage_impact(
        self,
        *,
        dataset: str | None = None,
        pipeline: str | None = None,
        commit: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[LineageHit]:
        check_limit(limit)
        check_offset(offset)
        wanted = {"dataset": dataset, "pipeline": pipeline, "commit": commit}
        query: dict[str, Any] = {k: value for k, value in wanted.items() if value is not None}
        query.update(limit=limit, offset=offset)
        return _list(LineageHit, self._get("/lineage/impact", query))

    # -- the serving fleet ---------------------------------------------------------------
    def heartbeat(self, beat: Heartbeat) -> None:
        # Replacing one row is idempotent by itself, and a beat is soon stale: no key to
        # keep, and no half-minute of retries holding up the resolver that sends it.
        if not isinstance(beat, Heartbeat):
            raise InvalidInput(f"a heartbeat must be a Heartbeat, got {type(beat).__name__}")
        body = beat.model_dump(mode="json")
        self._reply(self._send("POST", "/heartbeats", body=body, budget=self.read_budget_s))

    def fleet(
        self, name: str | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[Heartbeat]:
        check_name_page(limit, after, "a resolver id")
        return _list(Heartbeat, self._get("/fleet", _page(limit, after, model=name)))

    # -- release records -----------------------------------------------------------------
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
        body = {
            "state": ReplicaState(state).value,
            "uri": uri,
            "sha256": sha256,
            "size": size,
            "error": error,
        }
        path = f"/replicas/{_at(name, version)}/{_segment(region)}"
        return _as(Replica, self._write("PUT", path, body))

    def replicas(self, name: str, version: int) -> list[Replica]:
        return _list(Replica, self._get(f"/replicas/{_at(name, version)}"))

    def ready_in_regions(self, name: str, version: int, regions: Sequence[str]) -> list[str]:
        if isinstance(regions, str):
            raise InvalidInput("regions must be a list of names, not one string")
        found = self._get(f"/ready/{_at(name, version)}", {"region": list(regions)})
        return [str(region) for region in found["missing"]]

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
        if not isinstance(evidence, Mapping):
            raise InvalidInput("check evidence must be a mapping")
        body = {"kind": kind, "region": region, "passed": passed, "evidence": dict(evidence)}
        return _as(Check, self._write("POST", f"/checks/{_at(name, version)}", body))

    def checks(self, name: str, version: int, kind: str | None = None) -> list[Check]:
        query = {} if kind is None else {"kind": kind}
        return _list(Check, self._get(f"/checks/{_at(name, version)}", query))

    def latest_checks(self, name: str, version: int, kind: str) -> dict[str | None, Check]:
        found = self._get(f"/latest-checks/{_at(name, version)}", {"kind": kind})
        if not isinstance(found, dict):
            raise RegistryError("the registry server's latest checks are not an object")
        return {region or None: _as(Check, check) for region, check in found.items()}

    # -- tokens --------------------------------------------------------------------------
    def create_token(
        self, name: str, role: Role, *, scopes: Sequence[str] = ("*",)
    ) -> tuple[Token, str]:
        if isinstance(scopes, str):
            raise InvalidInput("scopes must be a list, not one string")
        body = {"name": name, "role": Role.parse(str(role)).value, "scopes": list(scopes)}
        made = self._write("POST", "/tokens", body)
        return _as(Token, made["token"]), str(made["secret"])

    def list_tokens(self, *, limit: int = 1000, after: str | None = None) -> list[Token]:
        check_name_page(limit, after, "a token name")
        return _list(Token, self._get("/tokens", _page(limit, after)))

    def revoke_token(self, name: str) -> Token:
        return _as(Token, self._write("DELETE", f"/tokens/{_segment(name)}"))

    def authenticate(self, secret: str) -> Token:
        raise InvalidInput(
            "authenticate is the server's own check of its callers; over HTTP, "
            "whoami() says who this store's token is"
        )

    # -- webhooks ------------------------------------------------------------------------
    def add_webhook(
        self, url: str, events: Sequence[str], *, model: str | None = None
    ) -> tuple[Webhook, str]:
        if isinstance(events, str):
            raise InvalidInput("events must be a list of event types, not one string")
        body = {"url": url, "events": list(events), "model": model}
        made = self._write("POST", "/webhooks", body)
        return _as(Webhook, made["webhook"]), str(made["secret"])

    def list_webhooks(self, *, limit: int = 1000, after: int = 0) -> list[Webhook]:
        check_id_page(limit, after)
        return _list(Webhook, self._get("/webhooks", {"limit": limit, "after": after}))

    def remove_webhook(self, webhook_id: int) -> Webhook:
        return _as(Webhook, self._write("DELETE", f"/webhooks/{int(webhook_id)}"))

    def webhook_deliveries(
        self, webhook_id: int, *, since: int = 0, limit: int = 100
    ) -> list[Delivery]:
        query = {"since": since, "limit": limit}
        return _list(Delivery, self._get(f"/webhooks/{int(webhook_id)}/deliveries", query))

    def replay_webhook(self, webhook_id: int, *, from_seq: int) -> int:
        body = {"from_seq": from_seq}
        return int(self._write("POST", f"/webhooks/{int(webhook_id)}/replay", body)["queued"])

    # -- data subjects -------------------------------------------------------------------
    # Inputs are checked here as the store checks them, so a bad one is the same one
    # line over HTTP (and a 100,000-key manifest is not sent to be refused).
    def record_subject_manifest(
        self, dataset: str, version: str, manifest: ArtifactRef, subjects: Sequence[str]
    ) -> SubjectManifest:
        # The keys go as a JSON list of hex strings (~67 bytes each); the server allows
        # this one route a larger body than the rest (``registry.server.limits``).
        dataset, version = check_dataset_version(dataset, version)
        if isinstance(subjects, str | bytes) or not isinstance(subjects, Sequence | set):
            raise InvalidInput("subjects must be a list of subject keys")
        keys = [check_subject_key(key) for key in subjects]
        if not isinstance(manifest, ArtifactRef):
            raise InvalidInput(f"a manifest must be an ArtifactRef, got {type(manifest).__name__}")
        body = {"manifest": manifest.model_dump(mode="json"), "subjects": keys}
        return _as(SubjectManifest, self._write("POST", _manifest(dataset, version), body))

    def subject_manifest(self, dataset: str, version: str) -> SubjectManifest:
        dataset, version = check_dataset_version(dataset, version)
        return _as(SubjectManifest, self._get(_manifest(dataset, version)))

    def subject_lineage(self, subject: str) -> SubjectLineage:
        path = f"/subjects/{check_subject_key(subject)}/lineage"
        return _as(SubjectLineage, self._get(path))

    def request_erasure(self, subject: str, *, reason: str) -> ErasureRequest:
        body = {"subject": check_subject_key(subject), "reason": reason}
        return _as(ErasureRequest, self._write("POST", "/erasures", body))

    def justify_erasure(
        self, request_id: int, name: str, version: int, *, reason: str
    ) -> ErasureRequest:
        request_id = check_erasure_request_id(request_id)
        body = {"name": check_model_name(name), "version": check_version(version), "reason": reason}
        path = f"/erasures/{request_id}/justify"
        return _as(ErasureRequest, self._write("POST", path, body))

    def erasures(
        self,
        *,
        open_only: bool = False,
        model: str | None = None,
        limit: int = 1000,
        after: int = 0,
    ) -> list[ErasureRequest]:
        check_id_page(limit, after)
        query = _page(limit, after, model=model)
        query["open_only"] = "true" if open_only else "false"
        return _list(ErasureRequest, self._get("/erasures", query))

    # -- retention -----------------------------------------------------------------------
    def artifact_references(self) -> ArtifactReferences:
        return _as(ArtifactReferences, self._get("/retention/references"))

    def record_collection(
        self, items: Sequence[CollectedArtifact], *, reason: str
    ) -> CollectionRecord:
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise InvalidInput("record_collection takes a list of CollectedArtifact")
        body = {"items": [_collected(item) for item in items], "reason": reason}
        return _as(CollectionRecord, self._write("POST", "/retention/collections", body))

    # -- the rollback as a dry run -------------------------------------------------------
    def rollback_plan(self, name: str, *, to: int | None = None) -> RollbackPlan:
        query = None if to is None else {"to": to}
        return _as(RollbackPlan, self._get(f"/rollback-plan/{_name(name)}", query))

    def rollback_plans(
        self, names: Sequence[str] | None = None, *, limit: int = 1000, after: str | None = None
    ) -> list[RollbackPlan]:
        wanted = check_plan_names(names, limit, after)
        if wanted is None:
            return _list(RollbackPlan, self._get("/rollback-plans", _page(limit, after)))
        # The plans come by name, so sorted names asked in slices (a query string holds
        # at most the server's ``MAX_NAMES``) come back in the order one call gives.
        wanted.sort()
        plans: list[RollbackPlan] = []
        for start in range(0, len(wanted), _NAMES_PER_QUERY):
            query = {"name": wanted[start : start + _NAMES_PER_QUERY]}
            plans += _list(RollbackPlan, self._get("/rollback-plans", query))
        return plans

    # -- the wire ------------------------------------------------------------------------
    def _saw(self, seq: int) -> None:
        if seq > _SEEN.get(self._base, 0):
            _SEEN[self._base] = seq

    def _get(
        self,
        path: str,
        query: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        if headers is None:
            # Every read, not only a resolve: a server that reads a replica answers from
            # its primary while the replica is behind this (``modelreg server --read-registry``).
            seen = _SEEN.get(self._base, 0)
            headers = {MIN_SEQ_HEADER: str(seen)} if seen else None
        response = self._send("GET", path, query=query, budget=self.read_budget_s, headers=headers)
        return self._reply(response)

    def _write(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        keyed: bool = True,
    ) -> Any:
        key = str(uuid.uuid4()) if keyed else None
        response = self._send(
            method, path, body=body, key=key, budget=self.write_budget_s, retries=None
        )
        return self._reply(response)

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        key: str | None = None,
        budget: float,
        retries: int | None = 1,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One call, retried (the same key each time) while the server is unreachable,
        for up to ``budget`` seconds and ``retries`` retries (None: only the budget)."""
        headers = dict(headers or {})
        if key is not None:
            headers["Idempotency-Key"] = key
        if self.origin is not None:
            headers[ORIGIN_HEADER] = self.origin.model_dump_json(exclude_none=True)
        content = None
        if body is not None:
            content = _json_bytes(body)
            headers["Content-Type"] = "application/json"
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                response = self._client.request(
                    method, path, params=query, content=content, headers=headers
                )
            except httpx.TransportError as exc:
                failure: RegistryError = RegistryUnavailable(
                    f"registry server {self.url} is unreachable: {_reason(exc)}"
                )
                cause: Exception = exc
            else:
                if not _retried(response):
                    written = response.headers.get(SEQ_HEADER)
                    if written is not None and written.isdigit():
                        self._saw(int(written))
                    return response
                failure, cause = error_of(response, self.url), failure_of(response)
            attempt += 1
            delay = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))
            spent = time.monotonic() - started
            if (retries is not None and attempt > retries) or spent + delay > budget:
                raise failure from cause
            time.sleep(delay)

    def _reply(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise error_of(response, self.url)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise RegistryError(
                f"registry server {self.url} sent a reply that is not JSON "
                f"(HTTP {response.status_code})"
            ) from exc


# ---------------------------------------------------------------- errors


def error_of(response: httpx.Response, url: str) -> RegistryError:
    """The registry error an error reply stands for, with the server's message."""
    status = response.status_code
    code, message, reasons = _error_body(response)
    if status == 422 and code == "gate_refused":
        return GateRefused(message, tuple(reasons))
    if status == 422 and code == "check_failed":
        return ReleaseCheckFailed(message)
    if status == 503 and code == "storage_error":
        return StorageError(message)
    if status == 503 and code == "artifact_error":
        return ArtifactError(message)
    if status in RETRIED:
        return RegistryUnavailable(f"registry server {url} is unavailable: {message}")
    kind = _BY_STATUS.get(status)
    if kind is not None:
        return kind(message)
    return RegistryError(f"registry server {url} failed (HTTP {status}): {message}")


def failure_of(response: httpx.Response) -> Exception:
    """What a retried error reply was, for the ``from`` of the error raised at the end."""
    return httpx.HTTPStatusError(
        f"HTTP {response.status_code}", request=response.request, response=response
    )


def _error_body(response: httpx.Response) -> tuple[str | None, str, list[str]]:
    try:
        error = response.json()["error"]
        code, message = error.get("code"), str(error["message"])
        reasons = [str(r) for r in error.get("reasons") or ()]
    except (ValueError, KeyError, TypeError, AttributeError):
        text = " ".join(response.text.split())[:300]
        return None, text or response.reason_phrase or f"HTTP {response.status_code}", []
    return (code if isinstance(code, str) else None), message, reasons


def _retried(response: httpx.Response) -> bool:
    if response.status_code not in RETRIED:
        return False
    return response.status_code != 503 or _error_body(response)[0] not in FINAL_503_CODES


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc).strip()
    kind = type(exc).__name__
    return f"{kind}: {text}" if text and text != kind else kind


# ---------------------------------------------------------------- paths and bodies


def _segment(text: str | int) -> str:
    """One path segment: every reserved character escaped (dots too, so that ``..``
    cannot walk the URL up a level)."""
    return quote(str(text), safe="").replace(".", "%2E")


def _name(name: str) -> str:
    """A model name in a path: its one ``/`` (a namespace) stays a ``/``."""
    return "/".join(_segment(part) for part in str(name).split("/"))


def _at(name: str, ref: str | int) -> str:
    return f"{_name(name)}@{_segment(ref)}"


def _manifest(dataset: str, version: str) -> str:
    """A dataset's name may hold ``/`` (the route takes it as a path); its version not."""
    return f"/datasets/{_name(dataset)}/versions/{_segment(version)}/manifest"


def _release(app: str, release: str) -> str:
    return f"{_name(app)}/{_segment(release)}"


def _json_bytes(body: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"cannot send this request as JSON: {exc}") from exc


def _api_base(url: str) -> str:
    base = url.rstrip("/")
    return base if base.endswith(API) else base + API


def _display(url: str) -> str:
    """The server's URL as messages name it: no credentials, no API prefix."""
    parsed = httpx.URL(url.rstrip("/"))
    shown = str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else str(parsed)
    return shown[: -len(API)] if shown.endswith(API) else shown


_ADAPTERS: dict[tuple[type[Any], bool], TypeAdapter[Any]] = {}


def _adapter(kind: type[Any], many: bool) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get((kind, many))
    if adapter is None:
        adapter = _ADAPTERS[kind, many] = TypeAdapter(list[kind] if many else kind)  # type: ignore[valid-type]
    return adapter


def _as(kind: type[T], data: Any) -> T:
    """A reply as the domain type it is (a server that sent another shape is an error)."""
    value: T = _parse(kind, data, many=False)
    return value


_NAMES_PER_QUERY = 1000  # the server's bound on repeated ``name`` keys (its ``MAX_NAMES``)


def _page(limit: int, after: str | int | None, **filters: str | None) -> dict[str, Any]:
    """A list's query: its page bounds and the filters that are set."""
    query: dict[str, Any] = {"limit": limit}
    if after is not None:
        query["after"] = after
    query.update((k, v) for k, v in filters.items() if v is not None)
    return query


def _list(kind: type[T], data: Any) -> list[T]:
    found: list[T] = _parse(kind, data, many=True)
    return found


def _parse(kind: type[Any], data: Any, *, many: bool) -> Any:
    try:
        return _adapter(kind, many).validate_python(data)
    except ValidationError as exc:
        shape = f"list of {kind.__name__}" if many else kind.__name__
        raise RegistryError(f"the registry server's reply is not a {shape}: {exc}") from exc


def _policy_record(data: Any) -> PolicyRecord:
    """A policy version as the server sends it (the policy as a policy document)."""
    try:
        fields = {**data, "policy": ReleasePolicy.parse(data["policy"])}
        return PolicyRecord.model_validate(fields)
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryError(f"the registry server's policy reply is malformed: {exc}") from exc


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process (certifi's roots, as httpx's default): a
    client built with its own spends ~60 ms loading certificates, which 200 resolvers in
    one process would pay 200 times."""
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def _collected(item: CollectedArtifact) -> dict[str, Any]:
    if not isinstance(item, CollectedArtifact):
        raise InvalidInput(f"a collected artifact must be a CollectedArtifact, got {item!r}")
    return item.model_dump(mode="json")
