"""``GuardedStore`` over a real ``SqlStore``: every write asks the role and the grant first.

The matrix is data: ``OPS`` lists each write with the role it needs, ``SCOPED`` lists
scoped grants with what they may and may not do. Every case runs on a fresh registry
(``WORLD``) where the call would succeed for an unscoped admin, so a ``Forbidden``
means the guard refused, not the store; a refusal must leave everything a caller can
observe as it was, and an allowed call must change what it says, as the token's name.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from registry.auth import Principal, Role, Scope
from registry.errors import Forbidden
from registry.guard import GuardedStore
from registry.models import ArtifactRef, Heartbeat, Signature, Stage, VersionCreate
from registry.release.policy import ReleasePolicy
from registry.release_models import ReplicaState
from registry.store.base import RegistryStore
from registry.store.sql import SqlStore

R, DS, DEP, ADMIN = Role.READER, Role.DATA_SCIENTIST, Role.DEPLOYER, Role.ADMIN
ROLES = list(Role)

FRAUD = "payments/fraud"  # the default protected aliases: production, champion
RISK = "payments/risk"  # its policy protects gold (and production), not champion
OUTSIDE = "fraud-detector"  # outside the payments namespace
ACTOR = "alice"  # the token's name: what the inner store acts as
REGION = "us-east"
SIGNATURE = Signature.model_validate({"features": [{"name": "amount", "dtype": "float64"}]})
# No gate asks for facts, so each pointer move below passes its gate for whoever may
# make it: a refusal in these tests is the guard's, never the store's.
OPEN_POLICY = ReleasePolicy(required=(), regions=(REGION,))
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def artifact() -> ArtifactRef:
    data = uuid.uuid4().hex
    return ArtifactRef(uri=f"file:///artifacts/{data}", sha256=data * 2, size=32)


def meta(**values: Any) -> VersionCreate:
    return VersionCreate.parse({"signature": SIGNATURE.model_dump(), **values})


@dataclass
class World:
    """What the setup made that the calls refer to."""

    webhook: int | None  # None until the store keeps webhooks


def build_world(store: SqlStore) -> World:
    """payments/fraud v1 (served, archived), v2 (Production), v3 (Staging, ``canary``),
    v4 (None);
    payments/risk v1 (Staging) under a policy protecting ``gold``; fraud-detector v1;
    app release checkout@r1; a token ``victim``; a webhook when the store has them."""
    store.set_policy(FRAUD, OPEN_POLICY, reason="setup")
    for _ in range(4):
        store.register(FRAUD, artifact(), meta())
    for version in (1, 2):
        store.transition(FRAUD, version, Stage.STAGING)
        store.transition(FRAUD, version, Stage.PRODUCTION)
    served = store.get_version(FRAUD, 1).artifact
    store.record_replica(
        FRAUD, 1, REGION, ReplicaState.VERIFIED, sha256=served.sha256, size=served.size
    )
    store.transition(FRAUD, 3, Stage.STAGING)
    store.set_aliases(FRAUD, {"canary": 3})
    risk = OPEN_POLICY.model_copy(update={"protected_aliases": ("production", "gold")})
    store.set_policy(RISK, risk, reason="setup")
    store.register(RISK, artifact(), meta())
    store.transition(RISK, 1, Stage.STAGING)
    store.register(OUTSIDE, artifact(), meta())
    store.create_app_release("checkout", "r1", SIGNATURE)
    store.create_token("victim", R)
    webhook = None
    if webhooks_built(store):
        webhook = store.add_webhook("http://127.0.0.1:9/hook", ["promoted"])[0].id
    return World(webhook)


def webhooks_built(store: RegistryStore) -> bool:
    """The webhook store is another helper's work; until it lands its methods raise."""
    try:
        store.list_webhooks()
    except NotImplementedError:
        return False
    return True


def observe(store: SqlStore) -> dict[str, Any]:
    """What a caller can read back of what the calls here touch: the event log (policies
    and every pointer move append events), the models and payments/fraud's versions,
    and what appends no events (replicas, checks, heartbeats, tokens, deliveries)."""
    webhooks = store.list_webhooks() if webhooks_built(store) else None
    return {
        "seq": store.latest_seq(),
        "events": store.events(limit=10_000),
        "models": store.list_models(),
        "versions": store.list_versions(FRAUD),
        "replicas": store.replicas(FRAUD, 4),
        "checks": [store.checks(FRAUD, 3), store.checks(FRAUD, 4)],
        "app_releases": store.list_app_releases(),
        "fleet": store.fleet(),
        "tokens": store.list_tokens(),
        "webhooks": webhooks,
        "deliveries": [store.webhook_deliveries(w.id) for w in webhooks or ()],
    }


def heartbeat() -> Heartbeat:
    return Heartbeat(
        resolver_id="web-1:1/fraud@production",
        model=FRAUD,
        ref=f"{FRAUD}@production",
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
    webhooks: bool = False  # needs the webhook store

    def __str__(self) -> str:
        return self.name


def _webhook(world: World) -> int:
    assert world.webhook is not None
    return world.webhook


OPS = [
    # models and versions
    Op("create_model", DS, lambda s, w: s.create_model("payments/new", description="d")),
    Op("register", DS, lambda s, w: s.register(FRAUD, artifact(), meta())),
    Op("register_outside", DS, lambda s, w: s.register(OUTSIDE, artifact(), meta())),
    Op("update_version", DS, lambda s, w: s.update_version(FRAUD, 4, tags={"team": "risk"})),
    # stages
    Op("to_staging", DEP, lambda s, w: s.transition(FRAUD, 4, Stage.STAGING)),
    Op("to_production", DEP, lambda s, w: s.transition(FRAUD, 3, Stage.PRODUCTION)),
    Op("to_archived", DEP, lambda s, w: s.transition(FRAUD, 2, Stage.ARCHIVED, reason="r")),
    Op("promote", DEP, lambda s, w: s.promote(FRAUD, 3, reason="ship")),
    Op("rollback", DEP, lambda s, w: s.rollback(FRAUD, reason="bad")),
    # aliases: protected ones are the model's policy's
    Op("alias", DS, lambda s, w: s.set_aliases(FRAUD, {"shadow": 4})),
    Op("alias_delete", DS, lambda s, w: s.set_aliases(FRAUD, {"shadow": 4, "canary": None})),
    Op("alias_protected", DEP, lambda s, w: s.set_aliases(FRAUD, {"champion": 3})),
    Op("alias_production", DEP, lambda s, w: s.set_aliases(FRAUD, {"production": 3})),
    Op("alias_mixed", DEP, lambda s, w: s.set_aliases(FRAUD, {"shadow": 4, "champion": 3})),
    Op("alias_policy_protected", DEP, lambda s, w: s.set_aliases(RISK, {"gold": 1})),
    Op("alias_policy_unprotected", DS, lambda s, w: s.set_aliases(RISK, {"champion": 1})),
    # break-glass: force needs admin whatever the move
    Op(
        "to_staging_forced",
        ADMIN,
        lambda s, w: s.transition(FRAUD, 4, Stage.STAGING, force=True, reason="glass"),
    ),
    Op("promote_forced", ADMIN, lambda s, w: s.promote(FRAUD, 4, force=True, reason="glass")),
    Op(
        "alias_forced",
        ADMIN,
        lambda s, w: s.set_aliases(FRAUD, {"shadow": 4}, force=True, reason="glass"),
    ),
    Op("rollback_forced", ADMIN, lambda s, w: s.rollback(FRAUD, force=True, reason="glass")),
    Op(
        "bind_forced",
        ADMIN,
        lambda s, w: s.bind_app_release("checkout", "r1", FRAUD, version=4, force=True, reason="g"),
    ),
    # the release contract
    Op("set_policy", ADMIN, lambda s, w: s.set_policy(FRAUD, ReleasePolicy(), reason="strict")),
    Op("approve", DEP, lambda s, w: s.approve(FRAUD, 3, reason="lgtm")),
    Op("request_approval", DEP, lambda s, w: s.request_approval(FRAUD, 3, needed=1)),
    Op("record_refusal", DS, lambda s, w: s.record_refusal(FRAUD, 4, ["auc too low"])),
    Op("create_app_release", DEP, lambda s, w: s.create_app_release("checkout", "r2", SIGNATURE)),
    Op(
        "bind_app_release",
        DEP,
        lambda s, w: s.bind_app_release("checkout", "r1", FRAUD, follow="production"),
    ),
    # release records and the fleet
    Op(
        "record_replica",
        DEP,
        lambda s, w: s.record_replica(FRAUD, 4, REGION, ReplicaState.PENDING),
    ),
    Op(
        "record_check",
        DEP,
        lambda s, w: s.record_check(FRAUD, 4, "health", region=REGION, passed=True, evidence={}),
    ),
    Op("heartbeat", R, lambda s, w: s.heartbeat(heartbeat())),
    # tokens and webhooks
    Op("create_token", ADMIN, lambda s, w: s.create_token("ci", DEP, scopes=["payments/*"])),
    Op("list_tokens", ADMIN, lambda s, w: s.list_tokens(), changes=False),
    Op("revoke_token", ADMIN, lambda s, w: s.revoke_token("victim")),
    Op(
        "add_webhook",
        ADMIN,
        lambda s, w: s.add_webhook("http://127.0.0.1:9/other", ["refused"]),
        webhooks=True,
    ),
    Op("list_webhooks", ADMIN, lambda s, w: s.list_webhooks(), changes=False, webhooks=True),
    Op("remove_webhook", ADMIN, lambda s, w: s.remove_webhook(_webhook(w)), webhooks=True),
    Op(
        "webhook_deliveries",
        ADMIN,
        lambda s, w: s.webhook_deliveries(_webhook(w)),
        changes=False,
        webhooks=True,
    ),
    Op(
        "replay_webhook",
        ADMIN,
        lambda s, w: s.replay_webhook(_webhook(w), from_seq=0),
        webhooks=True,
    ),
]
BY_NAME = {op.name: op for op in OPS}


def guarded(store: SqlStore, role: Role, *scopes: str) -> GuardedStore:
    """What the server hands a request: the store acting as the token, behind its grant."""
    who = Principal(ACTOR, role, tuple(Scope.parse(s) for s in scopes or ("*",)))
    return GuardedStore(store.acting_as(ACTOR), who)


def assert_refused(store: SqlStore, world: World, op: Op, guard: GuardedStore) -> None:
    before = observe(store)
    with pytest.raises(Forbidden, match=f"token '{ACTOR}'"):
        op.call(guard, world)
    assert observe(store) == before


def assert_allowed(store: SqlStore, world: World, op: Op, guard: GuardedStore) -> None:
    if op.webhooks and world.webhook is None:
        pytest.skip("the store keeps no webhooks yet (registry/store/sql/webhooks.py)")
    before = observe(store)
    op.call(guard, world)
    after = observe(store)
    assert (after != before) is op.changes
    new_events = after["events"][len(before["events"]) :]
    assert {e.actor for e in new_events} <= {ACTOR}


# ---------------------------------------------------------------- worlds
# A refusal changes nothing (each case checks that), so the refusals share one world
# per module and backend; an allowed call gets a world of its own. On SQLite that is a
# copy of one world built per session: building it takes longer than copying it.


@pytest.fixture(scope="module")
def shared_world(module_store: SqlStore) -> World:
    return build_world(module_store)


@pytest.fixture(scope="session")
def sqlite_world(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("world") / "reg.db"
    shutil.copyfile(sqlite_template, path)
    with SqlStore(f"sqlite:///{path}", actor="tester") as store:
        build_world(store)
    return path


@pytest.fixture
def world_store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[SqlStore, World]]:
    """A fresh registry holding ``build_world``'s world, on each backend."""
    if backend == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_world"), tmp_path / "reg.db")
        with SqlStore(f"sqlite:///{tmp_path}/reg.db", actor="tester") as store:
            yield store, World(store.list_webhooks()[0].id if webhooks_built(store) else None)
        return
    fresh: SqlStore = request.getfixturevalue("store")
    yield fresh, build_world(fresh)


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
    world_store: tuple[SqlStore, World], op: Op, role: Role
) -> None:
    store, world = world_store
    assert_allowed(store, world, op, guarded(store, role))


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
        "fleet",
        "replicas",
        "ready_in_regions",
        "checks",
        "latest_checks",
        "authenticate",
        "close",
    }
    called: set[str] = set()

    class Recorder:
        def __getattr__(self, method: str) -> Callable[..., None]:
            called.add(method)
            return lambda *args, **kwargs: None

    for op in OPS:
        op.call(Recorder(), World(webhook=1))  # type: ignore[arg-type]
    assert called == set(RegistryStore.__abstractmethods__) - reads


# (role, scopes, op, allowed): a grant allows exactly what it covers.
SCOPED = [
    # a namespace
    (DEP, ("payments/*",), "register", True),
    (DEP, ("payments/*",), "promote", True),
    (DEP, ("payments/*",), "alias_policy_protected", True),
    (DEP, ("payments/*",), "register_outside", False),
    (DEP, ("payments/*",), "create_app_release", False),  # registry-wide: needs '*'
    (DEP, ("payments/*",), "heartbeat", True),  # a reader's report: no scope needed
    (ADMIN, ("payments/*",), "set_policy", True),
    (ADMIN, ("payments/*",), "promote_forced", True),
    (ADMIN, ("payments/*",), "create_token", False),
    (ADMIN, ("payments/*",), "list_tokens", False),
    (ADMIN, ("payments/*",), "revoke_token", False),
    (ADMIN, ("payments/*",), "add_webhook", False),
    # one model
    (DEP, (FRAUD,), "promote", True),
    (DEP, (FRAUD,), "bind_app_release", True),
    (DEP, (FRAUD,), "record_check", True),
    (DEP, (FRAUD,), "alias_policy_protected", False),  # payments/risk
    (DS, (FRAUD,), "alias", True),
    (DS, (FRAUD,), "alias_policy_unprotected", False),
    (DS, (FRAUD,), "create_model", False),  # payments/new
    # one alias of one model
    (DS, (f"{FRAUD}@shadow",), "alias", True),
    (DEP, (f"{FRAUD}@shadow",), "alias", True),
    (DEP, (f"{FRAUD}@shadow",), "alias_forced", False),  # force is the admin's
    (DEP, (f"{FRAUD}@shadow",), "alias_delete", False),  # also moves canary
    (DEP, (f"{FRAUD}@shadow",), "alias_mixed", False),  # also moves champion
    (DEP, (f"{FRAUD}@shadow",), "alias_protected", False),
    (DEP, (f"{FRAUD}@shadow",), "register", False),  # not a pointer move
    (DEP, (f"{FRAUD}@shadow",), "update_version", False),
    (DEP, (f"{FRAUD}@shadow",), "record_replica", False),
    (DEP, (f"{FRAUD}@shadow",), "promote", False),
    (DEP, (f"{FRAUD}@shadow", f"{FRAUD}@canary"), "alias_delete", True),
    (DEP, (f"{FRAUD}@shadow", f"{FRAUD}@champion"), "alias_mixed", True),
    (ADMIN, (f"{FRAUD}@shadow",), "alias_forced", True),
    (ADMIN, (f"{FRAUD}@shadow",), "promote_forced", False),
    (ADMIN, (f"{FRAUD}@shadow",), "set_policy", False),
    # one stage of one model
    (DEP, (f"{FRAUD}@production",), "promote", True),
    (DEP, (f"{FRAUD}@production",), "to_production", True),
    (DEP, (f"{FRAUD}@production",), "alias_production", True),
    (DEP, (f"{FRAUD}@production",), "rollback", True),
    (DEP, (f"{FRAUD}@production",), "to_staging", False),
    (DEP, (f"{FRAUD}@production",), "to_archived", False),  # archiving moves archived too
    (DEP, (f"{FRAUD}@production", f"{FRAUD}@archived"), "to_archived", True),
    (DEP, (f"{FRAUD}@production",), "bind_app_release", False),
    (DEP, (f"{FRAUD}@production",), "approve", False),
    (DEP, ("payments/*@staging",), "to_staging", True),
    (DEP, ("payments/*@staging",), "promote", False),
    # one pointer of every model
    (DS, ("*@shadow",), "alias", True),
    (DS, ("*@shadow",), "register", False),
    (DEP, ("*@shadow",), "create_app_release", False),
    # several grants add up; a scope never lifts the role
    (DS, (OUTSIDE, FRAUD), "register", True),
    (DS, (OUTSIDE, FRAUD), "register_outside", True),
    (DS, (OUTSIDE, FRAUD), "alias_policy_unprotected", False),
    (DS, ("*",), "alias_protected", False),
    (R, ("elsewhere",), "heartbeat", True),
]


@pytest.mark.parametrize(
    ("role", "scopes", "op"),
    [(role, scopes, BY_NAME[name]) for role, scopes, name, ok in SCOPED if ok],
    ids=[f"{role}-{'+'.join(scopes)}-{name}" for role, scopes, name, ok in SCOPED if ok],
)
def test_a_scoped_grant_allows_what_it_covers(
    world_store: tuple[SqlStore, World], role: Role, scopes: tuple[str, ...], op: Op
) -> None:
    store, world = world_store
    assert_allowed(store, world, op, guarded(store, role, *scopes))


@pytest.mark.parametrize(
    ("role", "scopes", "op"),
    [(role, scopes, BY_NAME[name]) for role, scopes, name, ok in SCOPED if not ok],
    ids=[f"{role}-{'+'.join(scopes)}-{name}" for role, scopes, name, ok in SCOPED if not ok],
)
def test_a_scoped_grant_refuses_what_it_does_not_cover(
    module_store: SqlStore, shared_world: World, role: Role, scopes: tuple[str, ...], op: Op
) -> None:
    assert_refused(module_store, shared_world, op, guarded(module_store, role, *scopes))


READS: list[tuple[str, Callable[[RegistryStore], object]]] = [
    ("get_model", lambda s: s.get_model(FRAUD)),
    ("list_models", lambda s: s.list_models()),
    ("get_version", lambda s: s.get_version(FRAUD, 2)),
    ("list_versions", lambda s: s.list_versions(FRAUD, limit=2)),
    ("resolve", lambda s: s.resolve(FRAUD, "production")),
    ("get_policy", lambda s: s.get_policy(RISK)),
    ("policy_history", lambda s: s.policy_history(FRAUD)),
    ("approval_status", lambda s: s.approval_status(FRAUD, 3)),
    ("check_promotion", lambda s: s.check_promotion(FRAUD, 3)),
    ("get_app_release", lambda s: s.get_app_release("checkout", "r1")),
    ("list_app_releases", lambda s: s.list_app_releases("checkout")),
    ("events", lambda s: s.events(since=2, limit=5, model=FRAUD)),
    ("latest_seq", lambda s: s.latest_seq()),
    ("history", lambda s: s.history(FRAUD)),
    ("production_at", lambda s: s.production_at(FRAUD, datetime.now(UTC))),
    ("search", lambda s: s.search("stage = 'Production'")),
    ("lineage_impact", lambda s: s.lineage_impact(commit="9f1c")),
    ("fleet", lambda s: s.fleet()),
    ("replicas", lambda s: s.replicas(FRAUD, 1)),
    ("ready_in_regions", lambda s: s.ready_in_regions(FRAUD, 1, [REGION, "eu-west"])),
    ("checks", lambda s: s.checks(FRAUD, 1)),
    ("latest_checks", lambda s: s.latest_checks(FRAUD, 1, "health")),
]


@pytest.mark.parametrize("scopes", [("*",), ("elsewhere@shadow",)], ids=["unscoped", "scoped"])
def test_a_reader_reads_everything_as_the_store_does(
    module_store: SqlStore, shared_world: World, scopes: tuple[str, ...]
) -> None:
    guard = guarded(module_store, R, *scopes)
    before = observe(module_store)
    for name, read in READS:
        assert read(guard) == read(module_store), name
    assert observe(module_store) == before


@pytest.mark.parametrize("role", ROLES, ids=str)
def test_authenticate_passes_through_for_every_role(store: SqlStore, role: Role) -> None:
    _token, secret = store.create_token("ci", DEP)
    assert guarded(store, role).authenticate(secret).name == "ci"


def test_the_actor_recorded_is_the_inner_stores(world_store: tuple[SqlStore, World]) -> None:
    """The guard changes who may act, never who is recorded: the inner store's actor
    (the server makes it the token's name), never the root store's."""
    store, _world = world_store
    guard = guarded(store, ADMIN)
    assert guard.actor == ACTOR
    since = store.latest_seq()
    created = guard.register(FRAUD, artifact(), meta())
    guard.set_aliases(FRAUD, {"shadow": created.version})
    guard.promote(FRAUD, 3, reason="ship")
    check = guard.record_check(FRAUD, 3, "health", region=REGION, passed=True, evidence={})
    token, _secret = guard.create_token("ci", DEP)
    binding = guard.bind_app_release("checkout", "r1", FRAUD, follow="production")
    assert created.created_by == ACTOR
    assert check.recorded_by == ACTOR
    assert token.created_by == ACTOR
    assert [b.bound_by for b in binding.bindings] == [ACTOR]
    events = store.events(since=since)
    assert len(events) >= 4
    assert {e.actor for e in events} == {ACTOR}
    assert store.actor == "tester"


def test_closing_the_guard_leaves_the_inner_store_open(store: SqlStore) -> None:
    guarded(store, ADMIN).close()
    assert store.create_model("still-open").name == "still-open"
