"""``GuardedStore`` over a real ``SqlStore``: every write asks the role and the grant first.

The matrix is data: ``OPS`` lists each write with the role it needs, ``SCOPED`` lists
scoped grants with what they may and may not do. Every case runs in a registry
(``build_world``, under a fresh name prefix) where the call would succeed for an
unscoped admin, so a ``Forbidden`` means the guard refused, not the store; a refusal
must leave everything a caller can observe as it was, and an allowed call must change
what it says, as the token's name.

A refusal changes nothing (each case checks that), so the refusals share one world
per module and backend; an allowed call gets a world of its own in the same database,
holding only the parts it needs (building is most of a case's cost).
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from registry.auth import Principal, Role, Scope
from registry.errors import Forbidden, InvalidInput, NotFound
from registry.guard import GuardedStore
from registry.models import ArtifactRef, Heartbeat, Signature, Stage, VersionCreate
from registry.release.policy import ReleasePolicy
from registry.release_models import ReplicaState
from registry.retention_models import CollectedArtifact
from registry.store.base import RegistryStore
from registry.store.sql import SqlStore

R, DS, DEP, ADMIN = Role.READER, Role.DATA_SCIENTIST, Role.DEPLOYER, Role.ADMIN
ROLES = list(Role)

ACTOR = "alice"  # the token's name: what the inner store acts as
REGION = "us-east"
SIGNATURE = Signature.model_validate({"features": [{"name": "amount", "dtype": "float64"}]})
# No gate asks for facts, so each pointer move below passes its gate for whoever may
# make it: a refusal in these tests is the guard's, never the store's.
OPEN_POLICY = ReleasePolicy(required=(), regions=(REGION,))
T0 = datetime(2026, 11, 1, tzinfo=UTC)
T = TypeVar("T")
MANIFEST = ArtifactRef(uri="file:///manifests/m", sha256="ab" * 32, size=64, format="subjects")
UNNAMED_BYTES = CollectedArtifact(sha256="0" * 64, size=1, store="artifacts")


def artifact() -> ArtifactRef:
    data = uuid.uuid4().hex
    return ArtifactRef(uri=f"file:///artifacts/{data}", sha256=data * 2, size=32)


def meta(**values: Any) -> VersionCreate:
    return VersionCreate.parse({"signature": SIGNATURE.model_dump(), **values})


@dataclass(frozen=True)
class World:
    """One case's names, all under ``prefix``, and the webhook the setup made (0: none)."""

    prefix: str
    webhook: int = 0
    erasure: int = 0  # the erasure request the setup made (0: none)

    @property
    def fraud(self) -> str:  # the default protected aliases: production, champion
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
    def data(self) -> str:  # a dataset with a subject manifest (v1 holds ``subject``)
        return f"{self.prefix}-data"

    @property
    def subject(self) -> str:  # a subject key of this world
        return hashlib.sha256(self.prefix.encode()).hexdigest()

    def format(self, scope: str) -> str:
        return scope.format(p=self.prefix, fraud=self.fraud, outside=self.outside)


PARTS = frozenset({"served", "risk", "outside", "app", "victim", "webhook", "erasure"})


def build_world(store: SqlStore, parts: frozenset[str] = PARTS) -> World:
    """Always {p}/fraud v1, v2, v4 (None) and v3 (Staging, aliased ``canary``); and of
    ``parts``: ``served`` (v1 served, then v2: v2 in Production, v1 verified where it
    may come back), ``risk`` ({p}/risk v1 in Staging, under a policy protecting
    ``gold``), ``outside`` ({p}-outside v1), ``app`` (app release {p}-app@r1),
    ``victim`` (token {p}-victim), ``webhook`` (on {p}/fraud's promotions), ``erasure``
    ({p}/fraud v5 trained on {p}-data@v1, whose subject is under an erasure request)."""
    world = World(f"w{uuid.uuid4().hex[:10]}")
    fraud = world.fraud
    store.set_policy(fraud, OPEN_POLICY, reason="setup")
    for _ in range(4):
        store.register(fraud, artifact(), meta())
    if "served" in parts:
        for version in (1, 2):
            store.transition(fraud, version, Stage.STAGING)
            store.transition(fraud, version, Stage.PRODUCTION)
        served = store.get_version(fraud, 1).artifact
        store.record_replica(
            fraud, 1, REGION, ReplicaState.VERIFIED, sha256=served.sha256, size=served.size
        )
    store.transition(fraud, 3, Stage.STAGING)
    store.set_aliases(fraud, {"canary": 3})
    if "risk" in parts:
        risk = OPEN_POLICY.model_copy(update={"protected_aliases": ("production", "gold")})
        store.set_policy(world.risk, risk, reason="setup")
        store.register(world.risk, artifact(), meta())
        store.transition(world.risk, 1, Stage.STAGING)
    if "outside" in parts:
        store.register(world.outside, artifact(), meta())
    if "app" in parts:
        store.create_app_release(world.app, "r1", SIGNATURE)
    if "victim" in parts:
        store.create_token(world.victim, R)
    if "erasure" in parts:
        store.record_subject_manifest(world.data, "v1", artifact(), [world.subject])
        lineage = {"datasets": [{"name": world.data, "version": "v1"}]}
        store.register(fraud, artifact(), meta(lineage=lineage))
        request = store.request_erasure(world.subject, reason="setup")
        world = dataclasses.replace(world, erasure=request.id)
    if "webhook" in parts:
        webhook, _secret = store.add_webhook("http://127.0.0.1:9/hook", ["promoted"], model=fraud)
        return dataclasses.replace(world, webhook=webhook.id)
    return world


def _maybe(read: Callable[[str], T], name: str) -> T | None:
    try:
        return read(name)
    except NotFound:
        return None


def observe(store: SqlStore, world: World) -> dict[str, Any]:
    """What a caller can read back of what the calls touch: the log's head (policies
    and every pointer move append events), the world's models and {p}/fraud's
    versions, and what appends no events (replicas, checks, heartbeats, tokens,
    webhooks and their deliveries)."""
    fraud = world.fraud
    return {
        "seq": store.latest_seq(),
        "models": [_maybe(store.get_model, n) for n in (fraud, world.risk, world.new)],
        "outside": _maybe(store.list_versions, world.outside),
        "versions": store.list_versions(fraud),
        "policies": [store.policy_history(fraud), _maybe(store.policy_history, world.risk)],
        "replicas": store.replicas(fraud, 4),
        "checks": [store.checks(fraud, 3), store.checks(fraud, 4)],
        "app_releases": store.list_app_releases(world.app),
        "fleet": store.fleet(fraud),
        "tokens": store.list_tokens(),
        "webhooks": store.list_webhooks(),
        "deliveries": store.webhook_deliveries(world.webhook) if world.webhook else None,
        "manifest": _maybe(lambda data: store.subject_manifest(data, "v1"), world.data),
        "erasures": store.erasures(),
    }


def heartbeat(world: World) -> Heartbeat:
    return Heartbeat(
        resolver_id=f"web-1:1/{world.fraud}@production",
        model=world.fraud,
        ref=f"{world.fraud}@production",
        region=REGION,
        host="web-1",
        pid=1,
        seq=0,
        started_at=T0,
        seen_at=T0,
    )


Call = Callable[[RegistryStore, World], object]


@dataclass(frozen=True)
class Op:
    name: str
    need: Role
    call: Call
    changes: bool = True  # False: an admin-only read
    needs: frozenset[str] = frozenset()  # the world's parts it needs (``build_world``)

    def __str__(self) -> str:
        return self.name


OPS = [
    # models and versions
    Op("create_model", DS, lambda s, w: s.create_model(w.new, description="d")),
    Op("register", DS, lambda s, w: s.register(w.fraud, artifact(), meta())),
    Op(
        "register_outside",
        DS,
        lambda s, w: s.register(w.outside, artifact(), meta()),
        needs=frozenset({"outside"}),
    ),
    Op("update_version", DS, lambda s, w: s.update_version(w.fraud, 4, tags={"team": "risk"})),
    Op("update_model", DS, lambda s, w: s.update_model(w.fraud, tags={"team": "risk"})),
    Op(
        "rename_model",
        ADMIN,
        lambda s, w: s.rename_model(w.outside, w.new),
        needs=frozenset({"outside"}),
    ),
    Op("delete_version", ADMIN, lambda s, w: s.delete_version(w.fraud, 1)),
    Op("delete_model", ADMIN, lambda s, w: s.delete_model(w.outside), needs=frozenset({"outside"})),
    # stages
    Op("to_staging", DEP, lambda s, w: s.transition(w.fraud, 4, Stage.STAGING)),
    Op("to_production", DEP, lambda s, w: s.transition(w.fraud, 3, Stage.PRODUCTION)),
    Op(
        "to_archived",
        DEP,
        lambda s, w: s.transition(w.fraud, 2, Stage.ARCHIVED, reason="r"),
        needs=frozenset({"served"}),
    ),
    Op("promote", DEP, lambda s, w: s.promote(w.fraud, 3, reason="ship")),
    Op(
        "rollback", DEP, lambda s, w: s.rollback(w.fraud, reason="bad"), needs=frozenset({"served"})
    ),
    # aliases: protected ones are the model's policy's
    Op("alias", DS, lambda s, w: s.set_aliases(w.fraud, {"shadow": 4})),
    Op("alias_delete", DS, lambda s, w: s.set_aliases(w.fraud, {"shadow": 4, "canary": None})),
    Op("alias_protected", DEP, lambda s, w: s.set_aliases(w.fraud, {"champion": 3})),
    Op("alias_production", DEP, lambda s, w: s.set_aliases(w.fraud, {"production": 3})),
    Op("alias_mixed", DEP, lambda s, w: s.set_aliases(w.fraud, {"shadow": 4, "champion": 3})),
    Op(
        "alias_policy_protected",
        DEP,
        lambda s, w: s.set_aliases(w.risk, {"gold": 1}),
        needs=frozenset({"risk"}),
    ),
    Op(
        "alias_policy_unprotected",
        DS,
        lambda s, w: s.set_aliases(w.risk, {"champion": 1}),
        needs=frozenset({"risk"}),
    ),
    # break-glass: force needs admin whatever the move
    Op(
        "to_staging_forced",
        ADMIN,
        lambda s, w: s.transition(w.fraud, 4, Stage.STAGING, force=True, reason="glass"),
    ),
    Op("promote_forced", ADMIN, lambda s, w: s.promote(w.fraud, 4, force=True, reason="glass")),
    Op(
        "alias_forced",
        ADMIN,
        lambda s, w: s.set_aliases(w.fraud, {"shadow": 4}, force=True, reason="glass"),
    ),
    Op(
        "rollback_forced",
        ADMIN,
        lambda s, w: s.rollback(w.fraud, force=True, reason="glass"),
        needs=frozenset({"served"}),
    ),
    Op(
        "bind_forced",
        ADMIN,
        lambda s, w: s.bind_app_release(w.app, "r1", w.fraud, version=4, force=True, reason="g"),
        needs=frozenset({"app"}),
    ),
    # the release contract
    Op("set_policy", ADMIN, lambda s, w: s.set_policy(w.fraud, ReleasePolicy(), reason="strict")),
    Op("approve", DEP, lambda s, w: s.approve(w.fraud, 3, reason="lgtm")),
    Op("request_approval", DEP, lambda s, w: s.request_approval(w.fraud, 3, needed=1)),
    Op("record_refusal", DS, lambda s, w: s.record_refusal(w.fraud, 4, ["auc too low"])),
    Op("create_app_release", DEP, lambda s, w: s.create_app_release(w.app, "r2", SIGNATURE)),
    Op(
        "bind_app_release",
        DEP,
        lambda s, w: s.bind_app_release(w.app, "r1", w.fraud, follow="production"),
        needs=frozenset({"app"}),
    ),
    # release records and the fleet
    Op(
        "record_replica",
        DEP,
        lambda s, w: s.record_replica(w.fraud, 4, REGION, ReplicaState.PENDING),
    ),
    Op(
        "record_check",
        DEP,
        lambda s, w: s.record_check(w.fraud, 4, "health", region=REGION, passed=True, evidence={}),
    ),
    Op("heartbeat", R, lambda s, w: s.heartbeat(heartbeat(w))),
    # tokens and webhooks
    Op(
        "create_token",
        ADMIN,
        lambda s, w: s.create_token(f"{w.prefix}-ci", DEP, scopes=[f"{w.prefix}/*"]),
    ),
    Op("list_tokens", ADMIN, lambda s, w: s.list_tokens(), changes=False),
    Op("revoke_token", ADMIN, lambda s, w: s.revoke_token(w.victim), needs=frozenset({"victim"})),
    Op(
        "add_webhook",
        ADMIN,
        lambda s, w: s.add_webhook("http://127.0.0.1:9/other", ["refused"], model=w.fraud),
    ),
    Op(
        "add_webhook_everywhere",
        ADMIN,
        lambda s, w: s.add_webhook("http://127.0.0.1:9/all", ["refused"]),
    ),
    Op(
        "add_webhook_outside",
        ADMIN,
        lambda s, w: s.add_webhook("http://127.0.0.1:9/out", ["refused"], model=w.outside),
    ),
    Op("list_webhooks", ADMIN, lambda s, w: s.list_webhooks(), changes=False),
    Op(
        "remove_webhook",
        ADMIN,
        lambda s, w: s.remove_webhook(w.webhook),
        needs=frozenset({"webhook"}),
    ),
    Op(
        "webhook_deliveries",
        ADMIN,
        lambda s, w: s.webhook_deliveries(w.webhook),
        changes=False,
        needs=frozenset({"webhook"}),
    ),
    Op(
        "replay_webhook",
        ADMIN,
        lambda s, w: s.replay_webhook(w.webhook, from_seq=0),
        needs=frozenset({"webhook", "served"}),
    ),
    # retention: the listing names every model's artifacts; recording a collection of
    # bytes no registration named appends nothing (no model to log it on)
    Op("artifact_references", ADMIN, lambda s, w: s.artifact_references(), changes=False),
    Op(
        "record_collection",
        ADMIN,
        lambda s, w: s.record_collection([UNNAMED_BYTES], reason="gc"),
        changes=False,
    ),
]
# data subjects: recording a manifest is a data scientist's, erasure an admin's
OPS += [
    Op(
        "record_subject_manifest",
        DS,
        lambda s, w: s.record_subject_manifest(w.data, "v1", MANIFEST, [w.subject]),
    ),
    Op("request_erasure", ADMIN, lambda s, w: s.request_erasure(w.subject, reason="art. 17")),
    Op(
        "justify_erasure",
        ADMIN,
        lambda s, w: s.justify_erasure(w.erasure, w.fraud, 5, reason="kept"),
        needs=frozenset({"erasure"}),
    ),
]
BY_NAME = {op.name: op for op in OPS}


def guarded(store: SqlStore, role: Role, *scopes: str) -> GuardedStore:
    """What the server hands a request: the store acting as the token, behind its grant."""
    who = Principal(ACTOR, role, tuple(Scope.parse(s) for s in scopes or ("*",)))
    return GuardedStore(store.acting_as(ACTOR), who)


def assert_refused(store: SqlStore, world: World, op: Op, guard: GuardedStore) -> None:
    before = observe(store, world)
    with pytest.raises(Forbidden, match=f"token '{ACTOR}'"):
        op.call(guard, world)
    assert observe(store, world) == before


def assert_allowed(store: SqlStore, world: World, op: Op, guard: GuardedStore) -> None:
    before = observe(store, world)
    op.call(guard, world)
    after = observe(store, world)
    assert (after != before) is op.changes
    new_events = store.events(since=before["seq"])
    assert {e.actor for e in new_events} <= {ACTOR}
    assert all(e.model.startswith(world.prefix) for e in new_events)


@pytest.fixture(scope="module")
def shared_world(module_store: SqlStore) -> World:
    return build_world(module_store)


# ---------------------------------------------------------------- roles

BELOW = [(op, role) for op in OPS for role in ROLES if role.rank < op.need.rank]
AT_OR_ABOVE = [(op, role) for op in OPS for role in ROLES if role.rank >= op.need.rank]


@pytest.mark.parametrize(("op", "role"), BELOW, ids=str)
def test_a_role_below_the_need_is_refused_and_changes_nothing(
    module_store: SqlStore, shared_world: World, op: Op, role: Role
) -> None:
    assert_refused(module_store, shared_world, op, guarded(module_store, role))


@pytest.mark.parametrize(("op", "role"), AT_OR_ABOVE, ids=str)
def test_a_role_at_or_above_the_need_succeeds_as_the_token(
    module_store: SqlStore, op: Op, role: Role
) -> None:
    world = build_world(module_store, op.needs)
    assert_allowed(module_store, world, op, guarded(module_store, role))


def test_the_matrix_covers_every_write_of_the_interface() -> None:
    """A write added to ``RegistryStore`` must get a row here (and a rule in the guard)."""
    reads = {
        "get_model",
        "list_models",
        "get_version",
        "list_versions",
        "resolve",
        "get_policy",
        "policy_history",
        "approval_status",
        "check_promotion",
        "get_app_release",
        "list_app_releases",
        "resolve_app_release",
        "events",
        "latest_seq",
        "history",
        "production_at",
        "search",
        "lineage_impact",
        "subject_manifest",
        "subject_lineage",
        "erasures",
        "fleet",
        "replicas",
        "ready_in_regions",
        "checks",
        "latest_checks",
        "authenticate",
        "close",
        "rollback_plan",
        "rollback_plans",
    }
    called: set[str] = set()

    class Recorder:
        def __getattr__(self, method: str) -> Callable[..., None]:
            called.add(method)
            return lambda *args, **kwargs: None

    for op in OPS:
        op.call(Recorder(), World("p", webhook=1))  # type: ignore[arg-type]
    assert called == set(RegistryStore.__abstractmethods__) - reads


# ---------------------------------------------------------------- scoped grants

# (role, scopes, op, allowed): a grant allows exactly what it covers.
SCOPED = [
    # a namespace
    (DEP, ("{p}/*",), "register", True),
    (DEP, ("{p}/*",), "promote", True),
    (DEP, ("{p}/*",), "alias_policy_protected", True),
    (DEP, ("{p}/*",), "register_outside", False),
    (DEP, ("{p}/*",), "create_app_release", False),  # registry-wide: needs '*'
    (DEP, ("{p}/*",), "heartbeat", True),  # a reader's report: no scope needed
    (ADMIN, ("{p}/*",), "set_policy", True),
    (ADMIN, ("{p}/*",), "promote_forced", True),
    (ADMIN, ("{p}/*",), "create_token", False),
    (ADMIN, ("{p}/*",), "list_tokens", False),
    (ADMIN, ("{p}/*",), "revoke_token", False),
    (ADMIN, ("{p}/*",), "artifact_references", False),  # lists every model's artifacts
    (ADMIN, ("{p}/*",), "record_collection", False),
    (ADMIN, ("{p}/*",), "request_erasure", False),  # any model's versions: needs '*'
    (ADMIN, ("{p}/*",), "justify_erasure", True),  # one version of {p}/fraud
    (ADMIN, ("{p}-outside",), "justify_erasure", False),
    (DS, ("{p}/*",), "record_subject_manifest", False),  # datasets are registry-wide
    (ADMIN, ("{p}/*",), "add_webhook", True),  # on {p}/fraud: inside the grant
    (ADMIN, ("{p}/*",), "add_webhook_everywhere", False),  # every model: needs '*'
    (ADMIN, ("{p}/*",), "add_webhook_outside", False),
    (ADMIN, ("{p}/*",), "remove_webhook", True),
    (ADMIN, ("{p}/*",), "replay_webhook", True),
    (DEP, ("{p}/*",), "add_webhook", False),  # the role still counts
    # one model
    (DEP, ("{fraud}",), "promote", True),
    (DEP, ("{fraud}",), "bind_app_release", True),
    (DEP, ("{fraud}",), "record_check", True),
    (DEP, ("{fraud}",), "alias_policy_protected", False),  # {p}/risk
    (DS, ("{fraud}",), "alias", True),
    (DS, ("{fraud}",), "alias_policy_unprotected", False),
    (DS, ("{fraud}",), "create_model", False),  # {p}/new
    # one alias of one model
    (DS, ("{fraud}@shadow",), "alias", True),
    (DEP, ("{fraud}@shadow",), "alias", True),
    (DEP, ("{fraud}@shadow",), "alias_forced", False),  # force is the admin's
    (DEP, ("{fraud}@shadow",), "alias_delete", False),  # also moves canary
    (DEP, ("{fraud}@shadow",), "alias_mixed", False),  # also moves champion
    (DEP, ("{fraud}@shadow",), "alias_protected", False),
    (DEP, ("{fraud}@shadow",), "register", False),  # not a pointer move
    (DEP, ("{fraud}@shadow",), "update_version", False),
    (DEP, ("{fraud}@shadow",), "record_replica", False),
    (DEP, ("{fraud}@shadow",), "promote", False),
    (DEP, ("{fraud}@shadow", "{fraud}@canary"), "alias_delete", True),
    (DEP, ("{fraud}@shadow", "{fraud}@champion"), "alias_mixed", True),
    (ADMIN, ("{fraud}@shadow",), "alias_forced", True),
    (ADMIN, ("{fraud}@shadow",), "promote_forced", False),
    (ADMIN, ("{fraud}@shadow",), "set_policy", False),
    # one stage of one model
    (DEP, ("{fraud}@production",), "promote", True),
    (DEP, ("{fraud}@production",), "to_production", True),
    (DEP, ("{fraud}@production",), "alias_production", True),
    (DEP, ("{fraud}@production",), "rollback", True),
    (DEP, ("{fraud}@production",), "to_staging", False),
    (DEP, ("{fraud}@production",), "to_archived", False),  # archiving moves archived too
    (DEP, ("{fraud}@production", "{fraud}@archived"), "to_archived", True),
    (DEP, ("{fraud}@production",), "bind_app_release", False),
    (DEP, ("{fraud}@production",), "approve", False),
    (DEP, ("{p}/*@staging",), "to_staging", True),
    (DEP, ("{p}/*@staging",), "promote", False),
    # one pointer of every model
    (DS, ("*@shadow",), "alias", True),
    (DS, ("*@shadow",), "register", False),
    (DEP, ("*@shadow",), "create_app_release", False),
    # several grants add up; a scope never lifts the role
    (DS, ("{outside}", "{fraud}"), "register", True),
    (DS, ("{outside}", "{fraud}"), "register_outside", True),
    (DS, ("{outside}", "{fraud}"), "alias_policy_unprotected", False),
    (DS, ("*",), "alias_protected", False),
    (R, ("elsewhere",), "heartbeat", True),
]
_IDS = [f"{role}-{'+'.join(scopes)}-{name}" for role, scopes, name, _ in SCOPED]


@pytest.mark.parametrize(
    ("role", "scopes", "op"),
    [(role, scopes, BY_NAME[name]) for role, scopes, name, ok in SCOPED if ok],
    ids=[i for i, (*_, ok) in zip(_IDS, SCOPED, strict=True) if ok],
)
def test_a_scoped_grant_allows_what_it_covers(
    module_store: SqlStore, role: Role, scopes: tuple[str, ...], op: Op
) -> None:
    world = build_world(module_store, op.needs)
    guard = guarded(module_store, role, *(world.format(s) for s in scopes))
    assert_allowed(module_store, world, op, guard)


@pytest.mark.parametrize(
    ("role", "scopes", "op"),
    [(role, scopes, BY_NAME[name]) for role, scopes, name, ok in SCOPED if not ok],
    ids=[i for i, (*_, ok) in zip(_IDS, SCOPED, strict=True) if not ok],
)
def test_a_scoped_grant_refuses_what_it_does_not_cover(
    module_store: SqlStore, shared_world: World, role: Role, scopes: tuple[str, ...], op: Op
) -> None:
    guard = guarded(module_store, role, *(shared_world.format(s) for s in scopes))
    assert_refused(module_store, shared_world, op, guard)


# ---------------------------------------------------------------- reads and the actor

READS: list[tuple[str, Callable[[RegistryStore, World], object]]] = [
    ("get_model", lambda s, w: s.get_model(w.fraud)),
    ("list_models", lambda s, w: s.list_models()),
    ("get_version", lambda s, w: s.get_version(w.fraud, 2)),
    ("list_versions", lambda s, w: s.list_versions(w.fraud, limit=2)),
    ("resolve", lambda s, w: s.resolve(w.fraud, "production")),
    ("get_policy", lambda s, w: s.get_policy(w.risk)),
    ("policy_history", lambda s, w: s.policy_history(w.fraud)),
    ("approval_status", lambda s, w: s.approval_status(w.fraud, 3)),
    ("check_promotion", lambda s, w: s.check_promotion(w.fraud, 3)),
    ("get_app_release", lambda s, w: s.get_app_release(w.app, "r1")),
    ("list_app_releases", lambda s, w: s.list_app_releases(w.app)),
    ("events", lambda s, w: s.events(since=2, limit=5, model=w.fraud)),
    ("latest_seq", lambda s, w: s.latest_seq()),
    ("history", lambda s, w: s.history(w.fraud)),
    ("production_at", lambda s, w: s.production_at(w.fraud, datetime.now(UTC))),
    ("search", lambda s, w: s.search("stage = 'Production'", limit=5)),
    ("lineage_impact", lambda s, w: s.lineage_impact(commit="9f1c")),
    ("subject_manifest", lambda s, w: s.subject_manifest(w.data, "v1")),
    ("subject_lineage", lambda s, w: s.subject_lineage(w.subject)),
    ("erasures", lambda s, w: s.erasures(model=w.fraud)),
    ("fleet", lambda s, w: s.fleet(w.fraud)),
    ("replicas", lambda s, w: s.replicas(w.fraud, 1)),
    ("ready_in_regions", lambda s, w: s.ready_in_regions(w.fraud, 1, [REGION, "eu-west"])),
    ("checks", lambda s, w: s.checks(w.fraud, 1)),
    ("latest_checks", lambda s, w: s.latest_checks(w.fraud, 1, "health")),
    ("rollback_plan", lambda s, w: s.rollback_plan(w.fraud)),
    ("rollback_plans", lambda s, w: s.rollback_plans([w.fraud, w.risk])),
]


@pytest.mark.parametrize("scopes", [("*",), ("*@shadow",)], ids=["unscoped", "any-pointer"])
def test_a_reader_reads_everything_as_the_store_does(
    module_store: SqlStore, shared_world: World, scopes: tuple[str, ...]
) -> None:
    """A ``*`` grant, of any pointer, reads the whole registry (a scoped one reads only
    its models: ``test_a_scoped_reader_*`` below and tests/server/test_scoped_reads.py)."""
    guard = guarded(module_store, R, *scopes)
    before = observe(module_store, shared_world)
    for name, read in READS:
        assert read(guard, shared_world) == read(module_store, shared_world), name
    assert observe(module_store, shared_world) == before


@pytest.mark.parametrize("role", ROLES, ids=str)
def test_authenticate_passes_through_for_every_role(module_store: SqlStore, role: Role) -> None:
    name = f"ci-{uuid.uuid4().hex[:8]}"
    _token, secret = module_store.create_token(name, DEP)
    assert guarded(module_store, role).authenticate(secret).name == name


def test_the_actor_recorded_is_the_inner_stores(module_store: SqlStore) -> None:
    """The guard changes who may act, never who is recorded: the inner store's actor
    (the server makes it the token's name), never the root store's."""
    world = build_world(module_store, frozenset({"app"}))
    guard = guarded(module_store, ADMIN)
    assert guard.actor == ACTOR
    since = module_store.latest_seq()
    created = guard.register(world.fraud, artifact(), meta())
    guard.set_aliases(world.fraud, {"shadow": created.version})
    guard.promote(world.fraud, 3, reason="ship")
    check = guard.record_check(world.fraud, 3, "health", region=REGION, passed=True, evidence={})
    token, _secret = guard.create_token(f"{world.prefix}-ci", DEP)
    binding = guard.bind_app_release(world.app, "r1", world.fraud, follow="production")
    assert created.created_by == ACTOR
    assert check.recorded_by == ACTOR
    assert token.created_by == ACTOR
    assert [b.bound_by for b in binding.bindings] == [ACTOR]
    events = module_store.events(since=since)
    assert len(events) >= 4
    assert {e.actor for e in events} == {ACTOR}
    assert module_store.actor == "tester"


def test_closing_the_guard_leaves_the_inner_store_open(module_store: SqlStore) -> None:
    guarded(module_store, ADMIN).close()
    name = f"still-open-{uuid.uuid4().hex[:8]}"
    assert module_store.create_model(name).name == name


# ---------------------------------------------------------------- scoped reads (#12 item 5)
# A scoped token reads only the models its scopes name; any other model is, to it, one
# that does not exist. The HTTP doors (fast paths, feed, MLflow) are in
# tests/server/test_scoped_reads.py.


def _absent_message(store: SqlStore, read: Callable[[RegistryStore, str], object]) -> str:
    """What the store says for a model that does not exist (with a placeholder name)."""
    with pytest.raises(NotFound) as absent:
        read(store, "no-such-ns/ghost")
    return str(absent.value).replace("no-such-ns/ghost", "{name}")


ONE_MODEL_READS: list[tuple[str, Callable[[RegistryStore, str], object]]] = [
    ("get_model", lambda s, n: s.get_model(n)),
    ("get_version", lambda s, n: s.get_version(n, 1)),
    ("list_versions", lambda s, n: s.list_versions(n)),
    ("resolve", lambda s, n: s.resolve(n, "latest")),
    ("get_policy", lambda s, n: s.get_policy(n)),
    ("policy_history", lambda s, n: s.policy_history(n)),
    ("approval_status", lambda s, n: s.approval_status(n, 1)),
    ("check_promotion", lambda s, n: s.check_promotion(n, 1)),
    ("history", lambda s, n: s.history(n)),
    ("production_at", lambda s, n: s.production_at(n, datetime.now(UTC))),
    ("replicas", lambda s, n: s.replicas(n, 1)),
    ("ready_in_regions", lambda s, n: s.ready_in_regions(n, 1, [REGION])),
    ("checks", lambda s, n: s.checks(n, 1)),
    ("latest_checks", lambda s, n: s.latest_checks(n, 1, "health")),
    ("rollback_plan", lambda s, n: s.rollback_plan(n)),
    ("rollback_plans", lambda s, n: s.rollback_plans([n])),
]


@pytest.mark.parametrize(
    ("read_name", "read"), ONE_MODEL_READS, ids=[n for n, _ in ONE_MODEL_READS]
)
def test_a_model_outside_the_scope_reads_as_one_that_does_not_exist(
    module_store: SqlStore,
    shared_world: World,
    read_name: str,
    read: Callable[[RegistryStore, str], object],
) -> None:
    guard = guarded(module_store, R, f"{shared_world.prefix}/*")
    read(guard, shared_world.fraud)  # inside: answered
    outside = shared_world.outside
    read(module_store, outside)  # it exists
    with pytest.raises(NotFound) as hidden:
        read(guard, outside)
    assert str(hidden.value) == _absent_message(module_store, read).format(name=outside)


def test_a_scoped_reader_lists_only_its_namespace(
    module_store: SqlStore, shared_world: World
) -> None:
    w = shared_world
    mine = f"{w.prefix}/"
    guard = guarded(module_store, R, f"{w.prefix}/*")
    assert {m.name for m in guard.list_models()} == {w.fraud, w.risk}
    everything = module_store.search("", limit=10_000)
    assert any(not v.name.startswith(mine) for v in everything)
    assert guard.search("", limit=10_000) == [v for v in everything if v.name.startswith(mine)]
    assert guard.events(model=w.outside) == []
    assert guard.fleet() == [b for b in module_store.fleet() if b.model.startswith(mine)]
    assert {p.name for p in guard.rollback_plans()} == {w.fraud, w.risk}


def test_a_pointer_scope_reads_its_whole_model_and_nothing_else(
    module_store: SqlStore, shared_world: World
) -> None:
    w = shared_world
    guard = guarded(module_store, R, f"{w.fraud}@shadow")
    assert [m.name for m in guard.list_models()] == [w.fraud]
    assert guard.list_versions(w.fraud) == module_store.list_versions(w.fraud)
    assert guard.resolve(w.fraud, "canary") == 3
    with pytest.raises(NotFound, match="does not resolve"):
        guard.resolve(w.risk, "latest")


def test_scoped_pages_are_full_after_filtering(module_store: SqlStore) -> None:
    """``events(limit=N)`` and ``search(limit=N)`` hold N rows the token may see when
    there are that many, however many rows it may not see come between them."""
    w = build_world(module_store, frozenset({"outside"}))
    since = module_store.latest_seq()
    for _ in range(3):  # mine, then two of another namespace's, three times
        module_store.register(w.fraud, artifact(), meta())
        for _ in range(2):
            module_store.register(w.outside, artifact(), meta())
    guard = guarded(module_store, R, f"{w.prefix}/*")
    mine = [e for e in module_store.events(since=since) if e.model == w.fraud]
    assert len(mine) == 3
    assert guard.events(since=since, limit=2) == mine[:2]
    assert guard.events(since=since, limit=3) == mine
    assert guard.events(since=mine[-1].seq, limit=3) == []
    newest = module_store.search(f"name = '{w.fraud}'", limit=2)
    assert guard.search(f"name like '{w.prefix}%' order by version desc", limit=2) == newest
    assert guard.search("version >= 1 limit 2") == guard.search("", limit=2)
    assert {v.name for v in guard.search("", limit=2)} == {w.fraud}


def test_scoped_newest_pages_walk_back_past_what_the_token_may_not_see(
    module_store: SqlStore,
) -> None:
    """``events(newest=True, limit=N)`` holds the N newest events the token may see,
    however many newer ones of other models come after them; ``before`` pages on."""
    w = build_world(module_store, frozenset({"outside"}))
    since = module_store.latest_seq()
    for _ in range(3):  # mine, then four of another namespace's, three times
        module_store.register(w.fraud, artifact(), meta())
        for _ in range(4):
            module_store.register(w.outside, artifact(), meta())
    guard = guarded(module_store, R, f"{w.prefix}/*")
    mine = [e for e in module_store.events(since=since) if e.model == w.fraud]
    assert len(mine) == 3
    assert guard.events(since=since, limit=2, newest=True) == mine[1:]
    assert guard.events(since=since, limit=2, newest=True, before=mine[1].seq) == mine[:1]
    assert guard.events(since=since, limit=5, newest=True) == mine
    kinds = ["version.registered"]
    assert guard.events(since=since, limit=1, newest=True, kinds=kinds) == mine[2:]


def test_an_app_release_shows_only_the_bindings_a_scoped_token_sees(
    module_store: SqlStore,
) -> None:
    w = build_world(module_store, frozenset({"outside", "app"}))
    module_store.bind_app_release(w.app, "r1", w.fraud, version=1)
    module_store.bind_app_release(w.app, "r1", w.outside, version=1)
    module_store.create_app_release(w.app, "r2", SIGNATURE)
    module_store.bind_app_release(w.app, "r2", w.outside, version=1)
    guard = guarded(module_store, R, f"{w.prefix}/*")
    shown = guard.get_app_release(w.app, "r1")
    assert [b.model for b in shown.bindings] == [w.fraud]
    assert [r.release for r in guard.list_app_releases(w.app)] == ["r1"]
    assert guard.resolve_app_release(w.app, "r1") == (w.fraud, 1)  # the one it sees
    with pytest.raises(NotFound, match=f"app release {w.app}@r2 not found"):
        guard.get_app_release(w.app, "r2")
    with pytest.raises(NotFound, match="has no binding for model"):
        guard.resolve_app_release(w.app, "r1", w.outside)
    with pytest.raises(InvalidInput, match="name the model"):
        module_store.resolve_app_release(w.app, "r1")  # unscoped: two bindings


def test_a_scoped_admin_keeps_only_the_webhooks_inside_its_grant(module_store: SqlStore) -> None:
    w = build_world(module_store, frozenset({"outside"}))
    theirs, _ = module_store.add_webhook("http://127.0.0.1:9/o", ["*"], model=w.outside)
    everywhere, _ = module_store.add_webhook("http://127.0.0.1:9/a", ["*"])
    guard = guarded(module_store, ADMIN, f"{w.prefix}/*")
    ours, _ = guard.add_webhook("http://127.0.0.1:9/p", ["*"], model=f"{w.prefix}/*")
    listed = {h.id for h in guard.list_webhooks()}
    assert ours.id in listed
    assert not listed & {theirs.id, everywhere.id}
    for hidden in (theirs.id, everywhere.id):
        with pytest.raises(NotFound, match=f"no webhook {hidden}$"):
            guard.webhook_deliveries(hidden)
        with pytest.raises(NotFound):
            guard.remove_webhook(hidden)
    with pytest.raises(Forbidden, match="scoped to"):
        guard.add_webhook("http://127.0.0.1:9/x", ["*"], model="*")
    assert {h.id for h in module_store.list_webhooks()} >= {theirs.id, everywhere.id, ours.id}
    assert guard.remove_webhook(ours.id).removed_at is not None


def test_moving_an_alias_outside_the_scope_is_refused_alike_whether_it_exists(
    module_store: SqlStore, shared_world: World
) -> None:
    guard = guarded(module_store, DS, f"{shared_world.prefix}/*")
    messages = []
    for name in (shared_world.outside, f"{shared_world.prefix}-ghost"):
        with pytest.raises(Forbidden) as refused:
            guard.set_aliases(name, {"shadow": 1})
        messages.append(str(refused.value).replace(name, "{name}"))
    assert messages[0] == messages[1]


def test_a_scoped_token_sees_subject_lineage_and_erasures_only_within_its_scopes(
    module_store: SqlStore,
) -> None:
    w = build_world(module_store, frozenset({"outside"}))
    key = hashlib.sha256(f"{w.prefix}-scoped-subject".encode()).hexdigest()
    module_store.record_subject_manifest(w.data, "v1", artifact(), [key])
    lineage = {"datasets": [{"name": w.data, "version": "v1"}]}
    module_store.set_policy(w.outside, OPEN_POLICY, reason="setup")
    for name in (w.fraud, w.outside):  # each serves a version trained on the subject's data
        version = module_store.register(name, artifact(), meta(lineage=lineage)).version
        module_store.transition(name, version, Stage.STAGING)
        module_store.transition(name, version, Stage.PRODUCTION)
    request = module_store.request_erasure(key, reason="art. 17")
    assert {i.name for i in request.items} == {w.fraud, w.outside}
    assert {v.name for v in module_store.subject_lineage(key).versions} == {w.fraud, w.outside}

    guard = guarded(module_store, R, f"{w.prefix}/*")
    seen = guard.subject_lineage(key)
    assert {v.name for v in seen.versions} == {w.fraud}
    assert seen.datasets == module_store.subject_lineage(key).datasets  # datasets are shared
    mine = [r for r in guard.erasures() if r.id == request.id]
    assert [{i.name for i in r.items} for r in mine] == [{w.fraud}]
    assert guard.erasures(model=w.outside) == []
    outsider = guarded(module_store, R, w.outside)
    assert all(i.name == w.outside for r in outsider.erasures() for i in r.items)
