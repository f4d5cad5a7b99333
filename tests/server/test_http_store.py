"""``HttpStore`` against a real ``modelreg server`` on each backend: every store method
over the wire reads back what the database holds, the server's errors arrive as the
registry's error types, and the actor is the one the server verified.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from release_facts import make_releasable, release, replicate_everywhere

from registry.auth import Role
from registry.client import connect
from registry.config import Settings
from registry.errors import (
    Conflict,
    Forbidden,
    GateRefused,
    InvalidInput,
    NotFound,
    RegistryUnavailable,
    Unauthenticated,
)
from registry.models import ArtifactRef, Heartbeat, Origin, Signature, Stage, VersionCreate
from registry.release.policy import ReleasePolicy
from registry.release_models import ReplicaState
from registry.store.http import HttpStore

from .conftest import Served, free_port

META = {
    "metrics": {"auc": 0.91, "f1": 0.8},
    "params": {"n_estimators": 200, "learning_rate": 0.1, "note": None},
    "tags": {"team": "payments"},
    "signature": {
        "features": [
            {"name": "amount", "dtype": "float64"},
            {"name": "merchant_category", "dtype": "category"},
        ],
        "target": {"name": "is_fraud", "dtype": "int64"},
        "preprocessing_version": "fe-2.3",
    },
    "lineage": {
        "datasets": [
            {
                "name": "transactions",
                "version": "2026-11-01",
                "rows": 1200,
                "date_range": ["2026-10-01", "2026-10-31"],
            }
        ],
        "feature_pipeline": "fe-2.3",
        "code": {"repository": "git@example.com:fraud.git", "commit": "9f1c2ab", "branch": "main"},
    },
    "environment": {"python": "3.11.7", "packages": {"scikit-learn": "1.9.1"}},
    "run_id": "run-1",
    "description": "first try",
}


def unique(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def artifact() -> ArtifactRef:
    data = uuid.uuid4().bytes
    digest = hashlib.sha256(data).hexdigest()
    return ArtifactRef(uri=f"file:///artifacts/{digest}", sha256=digest, size=len(data))


def settings_for(served: Served, token: str | None, tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        registry_url=served.url,
        token=token,
        actor="claimed-user@laptop",  # what the client says; the server must not believe it
    )


@pytest.fixture
def http(module_served: Served) -> Iterator[HttpStore]:
    with HttpStore(module_served.url, token=module_served.admin) as store:
        yield store


@pytest.fixture
def name() -> str:
    return unique()


# ---------------------------------------------------------------- connecting


def test_connect_opens_an_http_store_with_the_settings_token(
    module_served: Served, tmp_path: Path, name: str
) -> None:
    secret = module_served.token(unique("ci"), Role.DATA_SCIENTIST)

    with connect(settings=settings_for(module_served, secret, tmp_path)) as store:
        assert isinstance(store, HttpStore)
        made = store.register(name, artifact(), VersionCreate())

    assert made.version == 1


def test_the_actor_is_the_tokens_name_not_the_os_user(
    module_served: Served, tmp_path: Path, name: str
) -> None:
    token_name = unique("trainer")
    secret = module_served.token(token_name, Role.DATA_SCIENTIST)

    with connect(settings=settings_for(module_served, secret, tmp_path)) as store:
        store.register(name, artifact(), VersionCreate())
        assert store.actor == token_name

    with module_served.db() as db:
        events = db.history(name)
        registrant = db.get_version(name, 1).created_by
    assert {e.actor for e in events} == {token_name}
    assert registrant == token_name


def test_without_a_token_connect_works_and_the_first_call_says_one_is_needed(
    module_served: Served, tmp_path: Path
) -> None:
    with (
        connect(settings=settings_for(module_served, None, tmp_path)) as store,
        pytest.raises(Unauthenticated, match="MODELREG_TOKEN"),
    ):
        store.list_models()


def test_a_revoked_or_unknown_token_is_unauthenticated(module_served: Served) -> None:
    token_name = unique("old")
    secret = module_served.token(token_name, Role.READER)
    with module_served.db() as db:
        db.revoke_token(token_name)

    with (
        HttpStore(module_served.url, token=secret) as revoked,
        pytest.raises(Unauthenticated, match="revoked"),
    ):
        revoked.list_models()
    with (
        HttpStore(module_served.url, token="mrt_" + "x" * 43) as unknown,
        pytest.raises(Unauthenticated, match="unknown token"),
    ):
        unknown.list_models()


def test_the_constructor_asks_nothing_of_the_server() -> None:
    store = HttpStore(f"http://127.0.0.1:{free_port()}", token=None, actor_hint="me@laptop")

    assert store.actor == "me@laptop"  # the hint stands in while the server cannot say
    store.close()


def test_a_flow_origin_shows_in_the_events_details(module_served: Served, name: str) -> None:
    origin = Origin(flow="retrain", run_id="f3a1", run_name="crafty-fox", deployment="retrain/d")

    with HttpStore(module_served.url, token=module_served.admin, origin=origin) as store:
        store.register(name, artifact(), VersionCreate())
        store.transition(name, 1, Stage.STAGING)

    with module_served.db() as db:
        events = db.history(name)
    assert [e.details.origin for e in events] == [origin, origin, origin]


# ---------------------------------------------------------------- the server's errors as types


def test_invalid_input_is_invalid_input(http: HttpStore) -> None:
    with pytest.raises(InvalidInput, match="invalid model name"):
        http.create_model("Bad Name")


def test_not_found_is_not_found(http: HttpStore, name: str) -> None:
    with pytest.raises(NotFound):
        http.get_model(name)
    with pytest.raises(NotFound):
        http.resolve(name, "production")


def test_a_stale_generation_is_a_conflict(http: HttpStore, name: str) -> None:
    http.register(name, artifact(), VersionCreate())
    stale = http.get_model(name).generation
    http.transition(name, 1, Stage.STAGING)

    with pytest.raises(Conflict):
        http.transition(name, 1, Stage.ARCHIVED, expected_generation=stale)

    assert http.get_version(name, 1).stage is Stage.STAGING


def test_a_forbidden_write_is_forbidden_and_changes_nothing(
    module_served: Served, http: HttpStore, name: str
) -> None:
    http.register(name, artifact(), VersionCreate())
    secret = module_served.token(unique("reader"), Role.READER)

    with (
        HttpStore(module_served.url, token=secret) as reader,
        pytest.raises(Forbidden, match="reader"),
    ):
        reader.transition(name, 1, Stage.STAGING)

    assert http.get_version(name, 1).stage is Stage.NONE


def test_a_gate_refusal_is_gate_refused_with_its_reasons(http: HttpStore, name: str) -> None:
    http.register(name, artifact(), VersionCreate())
    http.transition(name, 1, Stage.STAGING)

    with pytest.raises(GateRefused) as refused:
        http.promote(name, 1)

    assert refused.value.reasons
    assert all(reason in str(refused.value) for reason in refused.value.reasons)
    assert http.history(name)[-1].kind == "refused"


def test_a_body_over_the_servers_limit_is_invalid_input(http: HttpStore, name: str) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        http.create_model(name, description="x" * (2 << 20))


def test_a_request_the_schema_refuses_is_invalid_input(http: HttpStore, name: str) -> None:
    http.register(name, artifact(), VersionCreate())

    with pytest.raises(InvalidInput, match="moves"):
        http.set_aliases(name, {"shadow": 0})


def test_evidence_that_is_not_json_is_refused_before_it_is_sent(http: HttpStore, name: str) -> None:
    http.register(name, artifact(), VersionCreate())

    with pytest.raises(InvalidInput):
        http.record_check(name, 1, "health", passed=True, evidence={"p99": float("nan")})

    assert http.checks(name, 1) == []


def test_authenticate_is_the_servers_own_check(http: HttpStore) -> None:
    with pytest.raises(InvalidInput, match="whoami"):
        http.authenticate("mrt_" + "x" * 43)


# ---------------------------------------------------------------- every method over the wire


def test_models_and_versions_read_back_as_stored(
    module_served: Served, http: HttpStore, name: str
) -> None:
    made = http.create_model(name, description="card fraud", tags={"team": "payments"})
    first = http.register(name, artifact(), VersionCreate.parse(META))
    http.register(name, artifact(), VersionCreate())
    changed = http.update_version(name, 1, tags={"team": None, "owner": "ana"}, description="v1")

    with module_served.db() as db:
        assert http.get_model(name) == db.get_model(name)
        assert http.get_version(name, 1) == db.get_version(name, 1) == changed
        assert http.list_versions(name) == db.list_versions(name)
        assert http.list_versions(name, limit=1) == db.list_versions(name, limit=1)
        assert [m for m in http.list_models() if m.name == name] == [db.get_model(name)]
    assert (made.name, made.description, made.tags, made.latest_version) == (
        name,
        "card fraud",
        {"team": "payments"},
        0,
    )
    assert first.signature == VersionCreate.parse(META).signature
    assert first.lineage == VersionCreate.parse(META).lineage
    assert (changed.tags, changed.description) == ({"owner": "ana"}, "v1")


def test_a_registration_gets_an_idempotency_key_before_it_is_sent(
    http: HttpStore, name: str
) -> None:
    registered = http.register(name, artifact(), VersionCreate())

    assert registered.idempotency_key is not None
    again = http.register(
        name, registered.artifact, VersionCreate(idempotency_key=registered.idempotency_key)
    )
    assert again.version == registered.version == 1
    assert [v.version for v in http.list_versions(name)] == [1]


def test_pointers_move_and_resolve(module_served: Served, http: HttpStore, name: str) -> None:
    for _ in range(3):
        http.register(name, artifact(), VersionCreate.parse(META))
    staged = http.transition(name, 1, Stage.STAGING, reason="looks good")
    aliased = http.set_aliases(name, {"shadow": 2, "candidate": 3}, reason="try")
    for version in (1, 2):
        release(http, name, version)
    rolled = http.rollback(
        name, reason="2 is slow", expected_generation=http.get_model(name).generation
    )

    assert [e.to_value for e in staged.events] == ["Staging"]
    assert aliased.generation == staged.generation + 1
    assert rolled.events[-1].kind == "rollback"
    assert http.resolve(name, "production") == 1
    assert http.resolve(name, 3) == http.resolve(name, "latest") == 3
    assert http.resolve(name, "shadow") == 2
    with module_served.db() as db:
        assert http.history(name) == db.history(name)
        assert http.get_model(name) == db.get_model(name)


def test_the_release_contract_over_the_wire(
    module_served: Served, http: HttpStore, name: str
) -> None:
    http.register(name, artifact(), VersionCreate.parse(META))
    policy = ReleasePolicy.parse(
        {
            "staging": ["auc >= 0.75", "f1 >= production.f1 - 0.01"],
            "regions": ["us-east", "eu-west"],
            "approvals": {"required": 1},
        }
    )

    stored = http.set_policy(name, policy, reason="two regions")
    http.request_approval(name, 1, needed=1)
    waiting = http.approval_status(name, 1)
    approver = unique("approver")
    with HttpStore(module_served.url, token=module_served.token(approver, Role.DEPLOYER)) as other:
        approval = other.approve(name, 1, reason="read the canary")
    refusal = http.record_refusal(name, 1, ["canary lost"], gate="canary", reason="pipeline")

    assert (stored.version, stored.policy, stored.actor) == (1, policy, "admin")
    assert http.get_policy(name) == stored
    with module_served.db() as db:
        assert http.policy_history(name) == db.policy_history(name)
        assert http.approval_status(name, 1) == db.approval_status(name, 1)
        assert http.check_promotion(name, 1) == db.check_promotion(name, 1)
    assert (waiting.needed, waiting.approvers) == (1, ())
    assert (approval.kind, approval.recorded_by) == ("approval", approver)
    assert http.approval_status(name, 1).approvers == (approver,)
    assert http.check_promotion(name, 1)  # no replicas, health or canary yet
    assert (refusal.reasons, isinstance(refusal, GateRefused)) == (("canary lost",), True)


def test_replicas_and_checks_read_back_as_stored(
    module_served: Served, http: HttpStore, name: str
) -> None:
    registered = http.register(name, artifact(), VersionCreate())
    replica = http.record_replica(
        name,
        1,
        "us-east",
        ReplicaState.VERIFIED,
        uri="file:///r/us-east",
        sha256=registered.artifact.sha256,
        size=registered.artifact.size,
    )
    http.record_replica(name, 1, "eu-west", ReplicaState.FAILED, error="timed out")
    http.record_check(name, 1, "health", region="us-east", passed=True, evidence={"p99": 3.1})
    canary = http.record_check(name, 1, "canary", passed=False, evidence={"n": [1, 2]})

    assert replica.verified_at is not None
    assert http.ready_in_regions(name, 1, ["eu-west", "us-east"]) == ["eu-west"]
    assert http.latest_checks(name, 1, "canary") == {None: canary}
    with module_served.db() as db:
        assert http.replicas(name, 1) == db.replicas(name, 1)
        assert http.checks(name, 1) == db.checks(name, 1)
        assert http.checks(name, 1, "health") == db.checks(name, 1, "health")
        assert http.latest_checks(name, 1, "health") == db.latest_checks(name, 1, "health")
    with pytest.raises(InvalidInput):
        http.ready_in_regions(name, 1, [])


def test_app_releases_over_the_wire(module_served: Served, http: HttpStore, name: str) -> None:
    app = f"shop/{unique('app')}"
    http.register(name, artifact(), VersionCreate.parse(META))
    schema = Signature.model_validate(META["signature"])

    made = http.create_app_release(app, "1.0.0", schema, description="first")
    bound = http.bind_app_release(app, "1.0.0", name, version=1, reason="pin")

    assert made.bindings == ()
    assert [(b.model, b.version) for b in bound.bindings] == [(name, 1)]
    assert http.resolve_app_release(app, "1.0.0") == (name, 1)
    assert http.resolve_app_release(app, "1.0.0", name) == (name, 1)
    with module_served.db() as db:
        assert http.get_app_release(app, "1.0.0") == db.get_app_release(app, "1.0.0")
        assert http.list_app_releases(app) == db.list_app_releases(app)
    with pytest.raises(NotFound):
        http.get_app_release(app, "9.9")


def test_queries_over_the_wire(module_served: Served, http: HttpStore, name: str) -> None:
    commit = uuid.uuid4().hex[:12]
    meta = {**META, "lineage": {**META["lineage"], "code": {"commit": commit}}}  # type: ignore[dict-item]
    http.register(name, artifact(), VersionCreate.parse(meta))
    release(http, name, 1)
    now = datetime.now(UTC)

    assert http.production_at(name, now + timedelta(seconds=5)) == 1
    assert http.production_at(name, now - timedelta(days=1)) is None
    with pytest.raises(InvalidInput, match="timezone"):
        http.production_at(name, datetime(2026, 1, 1))
    hits = http.lineage_impact(commit=commit)
    assert [(h.name, h.version, h.in_production) for h in hits] == [(name, 1, True)]
    with module_served.db() as db:
        found = f"name = '{name}' and stage = 'Production'"
        assert http.search(found) == db.search(found) != []
        assert http.search(found, limit=1) == db.search(found, limit=1)
    with pytest.raises(InvalidInput):
        http.search("metrics.auc >")


def test_heartbeats_and_the_fleet_over_the_wire(
    module_served: Served, http: HttpStore, name: str
) -> None:
    now = datetime.now(UTC)
    beat = Heartbeat(
        resolver_id=unique("r"),
        model=name,
        ref=f"{name}@production",
        region="us-east",
        host="web-1",
        pid=4242,
        version=None,
        seq=12,
        degraded=True,
        reason="registry unreachable, serving from disk",
        started_at=now,
        seen_at=now,
    )

    http.heartbeat(beat)

    assert http.fleet(name) == [beat]
    with module_served.db() as db:
        assert http.fleet() == db.fleet()


def test_events_over_the_wire(module_served: Served, http: HttpStore, name: str) -> None:
    start = http.latest_seq()
    http.register(name, artifact(), VersionCreate())
    http.transition(name, 1, Stage.STAGING)

    mine = http.events(since=start, model=name)

    assert [e.kind for e in mine] == ["model.created", "version.registered", "stage"]
    assert http.latest_seq() >= mine[-1].seq
    with module_served.db() as db:
        assert http.events(since=start, limit=2) == db.events(since=start, limit=2)


def test_tokens_over_the_wire(module_served: Served, http: HttpStore) -> None:
    token_name = unique("deploy")

    token, secret = http.create_token(token_name, Role.DEPLOYER, scopes=["payments/*"])

    assert (token.role, token.scopes, token.created_by) == (Role.DEPLOYER, ("payments/*",), "admin")
    assert token in http.list_tokens()
    with HttpStore(module_served.url, token=secret) as deployer:
        assert deployer.whoami() == {
            "name": token_name,
            "role": "deployer",
            "scopes": ["payments/*"],
        }
        with pytest.raises(Forbidden):
            deployer.list_tokens()
        revoked = http.revoke_token(token_name)
        assert revoked.revoked_by == "admin"
        with pytest.raises(Unauthenticated):
            deployer.list_models()
    with pytest.raises(Conflict):
        http.create_token(token_name, Role.READER)


def test_webhooks_over_the_wire(http: HttpStore, name: str) -> None:
    hook, secret = http.add_webhook("http://127.0.0.1:9/hook", ["promoted"], model=name)

    assert secret
    assert hook in http.list_webhooks()
    assert http.webhook_deliveries(hook.id) == []
    assert http.replay_webhook(hook.id, from_seq=0) == 0
    assert http.remove_webhook(hook.id).id == hook.id
    assert hook.id not in [h.id for h in http.list_webhooks()]


def test_rollback_needs_verified_replicas_over_the_wire(http: HttpStore, name: str) -> None:
    for version in (1, 2):
        http.register(name, artifact(), VersionCreate())
        release(http, name, version)
    make_releasable(http, name, 2)
    replicate_everywhere(http, name, 1)

    changed = http.rollback(name, to=1, reason="back")

    assert [e.kind for e in changed.events] == ["rollback"]
    assert http.get_model(name).production == 1


def test_the_url_may_name_the_api_prefix(module_served: Served) -> None:
    with HttpStore(module_served.url + "/api/v1/", token=module_served.admin) as store:
        assert store.url == module_served.url
        assert store.actor == "admin"


def test_a_dead_server_is_unavailable_naming_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    with (
        HttpStore(url, token=None) as store,
        pytest.raises(RegistryUnavailable, match=f"registry server {url} is unreachable"),
    ):
        store.list_models()
