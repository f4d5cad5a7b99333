"""The role matrix over HTTP as data: a small registry per case, and every REST call
with the role it needs.

``build_world`` makes, straight in the database and under a fresh prefix, a registry
in which every call of ``CALLS`` would succeed for an unscoped admin; so a 403 in the
tests is the server's refusal, never the state's. ``observe`` reads back, straight
from the database, everything those calls could change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from registry.auth import Role
from registry.errors import NotFound
from registry.models import ArtifactRef, Signature, Stage, VersionCreate
from registry.release.policy import ReleasePolicy
from registry.release_models import ReplicaState
from registry.store.sql import SqlStore

R, DS, DEP, ADMIN = Role.READER, Role.DATA_SCIENTIST, Role.DEPLOYER, Role.ADMIN
REGION = "us-east"
SIGNATURE: dict[str, Any] = {"features": [{"name": "amount", "dtype": "float64"}]}
# No gate asks for facts: a pointer move here passes its gate for whoever may make it.
OPEN_POLICY = ReleasePolicy(required=(), regions=(REGION,))
T0 = datetime(2026, 11, 1, tzinfo=UTC)
T = TypeVar("T")


def artifact() -> dict[str, Any]:
    data = uuid.uuid4().bytes
    digest = hashlib.sha256(data).hexdigest()
    return {"uri": f"file:///artifacts/{digest}", "sha256": digest, "size": len(data)}


def meta() -> VersionCreate:
    return VersionCreate.parse({"signature": SIGNATURE})


@dataclass(frozen=True)
class World:
    """One case's names (all under ``prefix``) and the ids the setup made."""

    prefix: str
    webhook: int
    erasure: int = 0  # the erasure request the setup made (0: none)

    @property
    def fraud(self) -> str:  # default protected aliases: production, champion
        return f"{self.prefix}/fraud"

    @property
    def risk(self) -> str:  # its policy protects gold (and production), not champion
        return f"{self.prefix}/risk"

    @property
    def new(self) -> str:  # created by a call
        return f"{self.prefix}/new"

    @property
    def outside(self) -> str:  # outside the prefix's namespace
        return f"{self.prefix}-outside"

    @property
    def app(self) -> str:
        return f"{self.prefix}-app"

    @property
    def victim(self) -> str:  # a token to revoke
        return f"{self.prefix}-victim"

    @property
    def data(self) -> str:  # a dataset; with ``erasure``, v1 holds ``subject``
        return f"{self.prefix}-data"

    @property
    def subject(self) -> str:  # a subject key of this world
        return hashlib.sha256(self.prefix.encode()).hexdigest()

    def format(self, text: str) -> str:
        return text.format(
            p=self.prefix,
            fraud=self.fraud,
            risk=self.risk,
            new=self.new,
            outside=self.outside,
            app=self.app,
            victim=self.victim,
            webhook=self.webhook,
            data=self.data,
            erasure=self.erasure,
        )


PARTS = frozenset({"served", "risk", "outside", "app", "victim", "webhook"})
ERASURE = PARTS | {"erasure"}  # the shared world of the refusal and read tests


def build_world(db: SqlStore, parts: frozenset[str] = PARTS) -> World:
    """Always {p}/fraud v1, v2, v4 (None) and v3 (Staging, aliased ``canary``); and of
    ``parts``: ``served`` (v1 served, then v2: v2 in Production, v1 verified where it
    may come back), ``risk`` ({p}/risk v1 in Staging), ``outside`` ({p}-outside v1),
    ``app`` (app release {p}-app@r1), ``victim`` (token {p}-victim), ``webhook`` (on
    {p}/fraud); and, only when asked (``ERASURE``), ``erasure`` ({p}/fraud v5 trained
    on {p}-data@v1, whose subject is under an erasure request). Each call asks only for
    what it needs: building is most of a case."""
    world = World(f"w{uuid.uuid4().hex[:10]}", webhook=0)
    fraud = world.fraud
    db.set_policy(fraud, OPEN_POLICY, reason="setup")
    for _ in range(4):
        db.register(fraud, ArtifactRef.model_validate(artifact()), meta())
    if "served" in parts:
        for version in (1, 2):
            db.transition(fraud, version, Stage.STAGING)
            db.transition(fraud, version, Stage.PRODUCTION)
        served = db.get_version(fraud, 1).artifact
        db.record_replica(
            fraud, 1, REGION, ReplicaState.VERIFIED, sha256=served.sha256, size=served.size
        )
    db.transition(fraud, 3, Stage.STAGING)
    db.set_aliases(fraud, {"canary": 3})
    if "risk" in parts:
        risk = OPEN_POLICY.model_copy(update={"protected_aliases": ("production", "gold")})
        db.set_policy(world.risk, risk, reason="setup")
        db.register(world.risk, ArtifactRef.model_validate(artifact()), meta())
        db.transition(world.risk, 1, Stage.STAGING)
    if "outside" in parts:
        db.register(world.outside, ArtifactRef.model_validate(artifact()), meta())
    if "app" in parts:
        db.create_app_release(world.app, "r1", Signature.model_validate(SIGNATURE))
    if "victim" in parts:
        db.create_token(world.victim, R)
    if "erasure" in parts:
        manifest = ArtifactRef.model_validate(artifact())
        db.record_subject_manifest(world.data, "v1", manifest, [world.subject])
        lineage = {"lineage": {"datasets": [{"name": world.data, "version": "v1"}]}}
        db.register(fraud, ArtifactRef.model_validate(artifact()), VersionCreate.parse(lineage))
        request = db.request_erasure(world.subject, reason="setup")
        world = dataclasses.replace(world, erasure=request.id)
    if "webhook" in parts:
        webhook, _secret = db.add_webhook("http://127.0.0.1:9/hook", ["promoted"], model=fraud)
        return dataclasses.replace(world, webhook=webhook.id)
    return world


def _maybe(read: Callable[[str], T], name: str) -> T | None:
    try:
        return read(name)
    except NotFound:
        return None


def observe(db: SqlStore, world: World) -> dict[str, Any]:
    """What the calls could change, read straight from the database."""
    fraud = world.fraud
    return {
        "seq": db.latest_seq(),
        "models": [_maybe(db.get_model, n) for n in (fraud, world.risk, world.new)],
        "outside": _maybe(db.list_versions, world.outside),
        "versions": db.list_versions(fraud),
        "policies": [db.policy_history(fraud), _maybe(db.policy_history, world.risk)],
        "replicas": db.replicas(fraud, 4),
        "checks": [db.checks(fraud, 3), db.checks(fraud, 4)],
        "app_releases": db.list_app_releases(world.app),
        "fleet": db.fleet(fraud),
        "tokens": db.list_tokens(),
        "webhooks": db.list_webhooks(),
        "deliveries": db.webhook_deliveries(world.webhook) if world.webhook else None,
        "manifest": _maybe(lambda data: db.subject_manifest(data, "v1"), world.data),
        "erasures": db.erasures(),
    }


def heartbeat(world: World) -> dict[str, Any]:
    return {
        "resolver_id": f"web-1:1/{world.fraud}@production",
        "model": world.fraud,
        "ref": f"{world.fraud}@production",
        "region": REGION,
        "host": "web-1",
        "pid": 1,
        "seq": 0,
        "started_at": T0.isoformat(),
        "seen_at": T0.isoformat(),
    }


Body = Callable[[World], Any]


@dataclass(frozen=True)
class Call:
    """One REST call: ``path`` is formatted with the world's names (``World.format``)."""

    name: str
    need: Role
    method: str
    path: str
    body: Body | None = None
    status: int = 200
    changes: bool = True  # False: a read (admin-only ones too)
    needs: frozenset[str] = frozenset()  # the world's parts it needs (``build_world``)

    def __str__(self) -> str:
        return self.name


def _move(**extra: Any) -> Body:
    return lambda w: extra


def _glass(body: dict[str, Any]) -> Body:
    return lambda w: {**body, "force": True, "reason": "break glass"}


WRITES = [
    # models and versions
    Call("create_model", DS, "POST", "/models", lambda w: {"name": w.new}, 201),
    Call(
        "register",
        DS,
        "POST",
        "/versions/{fraud}",
        lambda w: {"artifact": artifact(), "meta": {"signature": SIGNATURE}},
        201,
    ),
    Call(
        "register_outside",
        DS,
        "POST",
        "/versions/{outside}",
        lambda w: {"artifact": artifact()},
        201,
        needs=frozenset({"outside"}),
    ),
    Call("update_version", DS, "PATCH", "/versions/{fraud}@4", _move(tags={"team": "risk"})),
    Call("update_model", DS, "PATCH", "/models/{fraud}", _move(tags={"team": "risk"})),
    Call(
        "rename_model",
        ADMIN,
        "POST",
        "/rename/{outside}",
        lambda w: {"new_name": w.new},
        needs=frozenset({"outside"}),
    ),
    Call("delete_version", ADMIN, "DELETE", "/versions/{fraud}@1", None, 204),
    Call(
        "delete_model",
        ADMIN,
        "DELETE",
        "/models/{outside}",
        None,
        204,
        needs=frozenset({"outside"}),
    ),
    # stages
    Call("to_staging", DEP, "PUT", "/stage/{fraud}@4", _move(stage="Staging")),
    Call("to_production", DEP, "PUT", "/stage/{fraud}@3", _move(stage="Production")),
    Call(
        "to_archived",
        DEP,
        "PUT",
        "/stage/{fraud}@2",
        _move(stage="Archived", reason="r"),
        needs=frozenset({"served"}),
    ),
    Call(
        "rollback",
        DEP,
        "POST",
        "/rollback/{fraud}",
        _move(reason="bad"),
        needs=frozenset({"served"}),
    ),
    # aliases: which are protected is the model's policy's
    Call("alias", DS, "PATCH", "/aliases/{fraud}", _move(moves={"shadow": 4})),
    Call(
        "alias_delete", DS, "PATCH", "/aliases/{fraud}", _move(moves={"shadow": 4, "canary": None})
    ),
    Call("alias_protected", DEP, "PATCH", "/aliases/{fraud}", _move(moves={"champion": 3})),
    Call("alias_production", DEP, "PATCH", "/aliases/{fraud}", _move(moves={"production": 3})),
    Call(
        "alias_policy_protected",
        DEP,
        "PATCH",
        "/aliases/{risk}",
        _move(moves={"gold": 1}),
        needs=frozenset({"risk"}),
    ),
    Call(
        "alias_policy_unprotected",
        DS,
        "PATCH",
        "/aliases/{risk}",
        _move(moves={"champion": 1}),
        needs=frozenset({"risk"}),
    ),
    # break-glass
    Call("to_staging_forced", ADMIN, "PUT", "/stage/{fraud}@4", _glass({"stage": "Staging"})),
    Call("promote_forced", ADMIN, "PUT", "/stage/{fraud}@4", _glass({"stage": "Production"})),
    Call("alias_forced", ADMIN, "PATCH", "/aliases/{fraud}", _glass({"moves": {"shadow": 4}})),
    Call(
        "rollback_forced",
        ADMIN,
        "POST",
        "/rollback/{fraud}",
        _glass({}),
        needs=frozenset({"served"}),
    ),
    Call(
        "bind_forced",
        ADMIN,
        "PUT",
        "/app-releases/{app}/r1/bindings/{fraud}",
        _glass({"version": 4}),
        needs=frozenset({"app"}),
    ),
    # the release contract
    Call(
        "set_policy",
        ADMIN,
        "PUT",
        "/policy/{fraud}",
        _move(policy={"required": ["replicas"]}, reason="strict"),
    ),
    Call("approve", DEP, "POST", "/approvals/{fraud}@3", _move(reason="lgtm")),
    Call("request_approval", DEP, "POST", "/approval-requests/{fraud}@3", _move(needed=1), 204),
    Call("record_refusal", DS, "POST", "/refusals/{fraud}@4", _move(reasons=["auc too low"])),
    Call(
        "create_app_release",
        DEP,
        "POST",
        "/app-releases",
        lambda w: {"app": w.app, "release": "r2", "feature_schema": SIGNATURE},
        201,
    ),
    Call(
        "bind_app_release",
        DEP,
        "PUT",
        "/app-releases/{app}/r1/bindings/{fraud}",
        _move(follow="production"),
        needs=frozenset({"app"}),
    ),
    # release records and the fleet
    Call("record_replica", DEP, "PUT", "/replicas/{fraud}@4/us-east", _move(state="pending")),
    Call(
        "record_check",
        DEP,
        "POST",
        "/checks/{fraud}@4",
        _move(kind="health", region=REGION, passed=True, evidence={}),
    ),
    Call("heartbeat", R, "POST", "/heartbeats", heartbeat, 204),
    # tokens and webhooks
    Call(
        "create_token",
        ADMIN,
        "POST",
        "/tokens",
        lambda w: {"name": f"{w.prefix}-ci", "role": "deployer", "scopes": [f"{w.prefix}/*"]},
        201,
    ),
    Call("list_tokens", ADMIN, "GET", "/tokens", changes=False),
    Call("revoke_token", ADMIN, "DELETE", "/tokens/{victim}", needs=frozenset({"victim"})),
    Call(
        "add_webhook",
        ADMIN,
        "POST",
        "/webhooks",
        lambda w: {"url": "http://127.0.0.1:9/other", "events": ["refused"], "model": w.fraud},
        201,
    ),
    Call("list_webhooks", ADMIN, "GET", "/webhooks", changes=False),
    Call("remove_webhook", ADMIN, "DELETE", "/webhooks/{webhook}", needs=frozenset({"webhook"})),
    Call(
        "webhook_deliveries",
        ADMIN,
        "GET",
        "/webhooks/{webhook}/deliveries",
        changes=False,
        needs=frozenset({"webhook"}),
    ),
    Call(
        "replay_webhook",
        ADMIN,
        "POST",
        "/webhooks/{webhook}/replay",
        _move(from_seq=0),
        needs=frozenset({"webhook", "served"}),  # promotions to replay
    ),
    # data subjects: a manifest is a data scientist's (datasets are registry-wide),
    # erasure an admin's
    Call(
        "record_subject_manifest",
        DS,
        "POST",
        "/datasets/{data}/versions/v1/manifest",
        lambda w: {"manifest": artifact(), "subjects": [w.subject]},
    ),
    Call(
        "request_erasure",
        ADMIN,
        "POST",
        "/erasures",
        lambda w: {"subject": w.subject, "reason": "art. 17"},
        status=201,
    ),
    Call(
        "justify_erasure",
        ADMIN,
        "POST",
        "/erasures/{erasure}/justify",
        lambda w: {"name": w.fraud, "version": 5, "reason": "kept for the audit"},
        needs=frozenset({"erasure"}),
    ),
    # retention (modelreg gc): admin only; bytes no registration named log nothing
    Call("artifact_references", ADMIN, "GET", "/retention/references", changes=False),
    Call(
        "record_collection",
        ADMIN,
        "POST",
        "/retention/collections",
        lambda w: {
            "items": [{"sha256": "0" * 64, "size": 1, "store": "artifacts"}],
            "reason": "gc",
        },
        changes=False,
    ),
]

READS = [
    Call(f"read {path}", R, "GET", path, changes=False)
    for path in (
        "/whoami",
        "/models",
        "/models/{fraud}",
        "/versions/{fraud}?limit=2",
        "/versions/{fraud}@2",
        "/resolve/{fraud}@production",
        "/resolve/{fraud}@canary",
        "/policy/{risk}",
        "/policy-history/{fraud}",
        "/approvals/{fraud}@3",
        "/promotion-check/{fraud}@3?target=Production",
        "/app-releases?app={app}",
        "/app-releases/{app}/r1",
        "/events?since=0&limit=5",
        "/events/latest",
        "/history/{fraud}",
        "/production-at/{fraud}?at=2100-01-01T00:00:00Z",
        "/search?filter=stage%20%3D%20%27Production%27&limit=5",
        "/lineage/impact?commit=9f1c",
        "/fleet?model={fraud}",
        "/replicas/{fraud}@1",
        "/ready/{fraud}@1?region=us-east&region=eu-west",
        "/checks/{fraud}@1",
        "/latest-checks/{fraud}@1?kind=health",
    )
]
BY_NAME = {call.name: call for call in WRITES}
