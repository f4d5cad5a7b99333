"""The rollback as a dry run (#13 item 0): the plan names the version the rollback then
restores, is safe exactly when the rollback goes through (its problems are the
refusal's reasons, word for word), shows what the decision rests on, and changes
nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from release_facts import make_releasable, replicate_everywhere

from registry.auth import Principal, Role, Scope
from registry.errors import GateRefused, NotFound
from registry.guard import GuardedStore
from registry.models import Signature, Stage
from registry.release.policy import ReleasePolicy
from registry.release_models import ReplicaState, RollbackPlan
from registry.store.base import RegistryStore

from .support import promote, register_versions, serve_in_turn

AMOUNT = {"name": "amount", "dtype": "float64"}
MERCHANT = {"name": "merchant_category", "dtype": "category"}


def _signature(*features: dict[str, str]) -> dict[str, object]:
    return {"features": list(features), "preprocessing_version": "fe-2.3"}


def assert_rollback_restores(store: RegistryStore, plan: RollbackPlan, to: int | None) -> None:
    """The plan was safe, and the rollback that follows restores exactly its target."""
    assert (plan.safe, plan.problems) == (True, ())
    change = store.rollback(plan.name, to=to, reason="as planned")
    assert change.events[0].to_value == str(plan.target)
    assert store.get_model(plan.name).production == plan.target


def assert_rollback_refused_as_planned(
    store: RegistryStore, plan: RollbackPlan, to: int | None = None
) -> None:
    """The plan was unsafe, and the rollback is refused with the plan's problems."""
    assert not plan.safe
    production = store.get_model(plan.name).production
    with pytest.raises(GateRefused) as refused:
        store.rollback(plan.name, to=to, reason="against the plan")
    assert refused.value.reasons == plan.problems
    assert store.get_model(plan.name).production == production


# ---------------------------------------------------------------- the target


def test_the_plan_names_the_previous_production_version(store: RegistryStore) -> None:
    serve_in_turn(store, "fraud", 2)

    plan = store.rollback_plan("fraud")

    assert (plan.current, plan.target) == (2, 1)
    assert plan.why.startswith("v1 is the latest version to serve in Production before v2")
    assert "by tester, a promotion" in plan.why
    assert_rollback_restores(store, plan, None)


def test_after_a_rollback_the_version_it_restored_is_the_target(store: RegistryStore) -> None:
    serve_in_turn(store, "fraud", 3)
    store.rollback("fraud", reason="v3 is bad")  # v2 serves again, v3 was rolled back from
    (v4,) = register_versions(store, "fraud", 1)
    promote(store, "fraud", v4.version)

    plan = store.rollback_plan("fraud")

    assert (plan.current, plan.target) == (4, 2)
    assert "by tester, a rollback)" in plan.why
    assert "skipped" not in plan.why  # v3 served before v2 came back
    assert_rollback_restores(store, plan, None)


def test_the_plan_skips_a_later_version_rolled_back_from(store: RegistryStore) -> None:
    serve_in_turn(store, "fraud", 3)
    store.rollback("fraud", to=1, reason="v3 is bad, v2 is suspect")  # v1 serves again

    plan = store.rollback_plan("fraud")

    assert (plan.current, plan.target) == (1, 2)
    assert "skipped v3: a rollback moved away from each" in plan.why
    assert_rollback_restores(store, plan, None)


def test_the_plan_of_a_second_rollback_goes_further_back(store: RegistryStore) -> None:
    serve_in_turn(store, "fraud", 3)
    store.rollback("fraud", reason="v3 is bad")

    plan = store.rollback_plan("fraud")

    assert (plan.current, plan.target) == (2, 1)
    assert_rollback_restores(store, plan, None)


def test_a_requested_version_is_planned_as_asked(store: RegistryStore) -> None:
    serve_in_turn(store, "fraud", 3)

    plan = store.rollback_plan("fraud", to=1)

    assert (plan.current, plan.target) == (3, 1)
    assert plan.why.startswith("v1 was asked for")
    assert store.rollback_plan("fraud").target == 2  # without --to: the previous one
    assert_rollback_restores(store, plan, 1)


@pytest.mark.parametrize(
    ("to", "problem"),
    [
        (3, "version 3 never served in Production; promote it instead"),
        (2, "version 2 is already in Production"),
    ],
)
def test_a_requested_version_the_rollback_refuses_is_planned_unsafe(
    store: RegistryStore, to: int, problem: str
) -> None:
    serve_in_turn(store, "fraud", 2)
    register_versions(store, "fraud", 1)

    plan = store.rollback_plan("fraud", to=to)

    assert (plan.target, plan.problems) == (None, (problem,))
    assert_rollback_refused_as_planned(store, plan, to)


def test_no_production_version_means_nothing_to_roll_back_to(store: RegistryStore) -> None:
    register_versions(store, "fraud", 2)

    plan = store.rollback_plan("fraud")

    assert (plan.current, plan.target, plan.safe) == (None, None, False)
    assert plan.problems == ("no earlier Production version to roll back to",)
    assert (plan.regions, plan.releases, plan.checks) == ((), (), ())
    assert_rollback_refused_as_planned(store, plan)


# ---------------------------------------------------------------- unsafe, as the rollback says


def test_a_region_without_a_verified_replica_makes_it_unsafe(store: RegistryStore) -> None:
    register_versions(store, "fraud", 2)
    store.transition("fraud", 1, Stage.STAGING)
    replicate_everywhere(store, "fraud", 1, regions=["us-east"])
    store.promote("fraud", 1, force=True, reason="first release, before replication")
    promote(store, "fraud", 2)
    store.record_replica("fraud", 1, "eu-west", ReplicaState.FAILED, error="timeout")

    plan = store.rollback_plan("fraud")

    assert plan.target == 1
    assert plan.problems == (
        "v1 is not verified in eu-west (failed: timeout), ap-south (no replica): "
        "replicate it first",
    )
    regions = {r.region: r for r in plan.regions}
    assert list(regions) == ["us-east", "eu-west", "ap-south"]
    assert regions["us-east"].replica == "verified"
    assert regions["us-east"].verified_at is not None
    assert (regions["eu-west"].replica, regions["eu-west"].error) == ("failed", "timeout")
    assert (regions["ap-south"].replica, regions["ap-south"].verified_at) == (None, None)
    assert_rollback_refused_as_planned(store, plan)
    replicate_everywhere(store, "fraud", 1)
    assert_rollback_restores(store, store.rollback_plan("fraud"), None)


def test_only_the_policy_regions_count(store: RegistryStore) -> None:
    register_versions(store, "fraud", 2)
    store.transition("fraud", 1, Stage.STAGING)
    replicate_everywhere(store, "fraud", 1, regions=["us-east"])
    store.promote("fraud", 1, force=True, reason="first release, before replication")
    promote(store, "fraud", 2)
    store.set_policy("fraud", ReleasePolicy.parse({"regions": ["us-east"]}), reason="one region")

    plan = store.rollback_plan("fraud")

    assert [r.region for r in plan.regions] == ["us-east"]
    assert_rollback_restores(store, plan, None)


def test_a_following_release_that_cannot_feed_the_target_makes_it_unsafe(
    store: RegistryStore,
) -> None:
    register_versions(store, "fraud", 1, signature=_signature(AMOUNT))
    promote(store, "fraud", 1)
    register_versions(store, "fraud", 1, signature=_signature(AMOUNT, MERCHANT))
    store.transition("fraud", 2, Stage.STAGING)
    make_releasable(store, "fraud", 2)
    store.promote("fraud", 2)
    schema = Signature.model_validate(_signature(AMOUNT, MERCHANT))
    store.create_app_release("checkout", "2.0", schema)
    store.bind_app_release("checkout", "2.0", "fraud", follow="production")
    store.create_app_release("checkout", "1.0", Signature.model_validate(_signature(AMOUNT)))
    store.bind_app_release("checkout", "1.0", "fraud", version=1)

    plan = store.rollback_plan("fraud")

    assert plan.target == 1
    (problem,) = plan.problems
    assert "checkout@2.0" in problem and "merchant_category" in problem
    pinned, following = plan.releases
    assert (pinned.release, pinned.pinned, pinned.compatible) == ("checkout@1.0", 1, True)
    assert pinned.reason == "pinned to v1: a rollback does not change it"
    assert (following.release, following.follow, following.compatible) == (
        "checkout@2.0",
        "production",
        False,
    )
    assert following.reason == problem
    assert_rollback_refused_as_planned(store, plan)


def test_the_erasure_gate_makes_it_unsafe(make_store: Callable[..., RegistryStore]) -> None:
    from .test_subjects import SUBJECT, record_snapshots, register

    store = make_store()
    record_snapshots(store)
    promote(store, "fraud", register(store, "fraud", "tx@d2"))  # holds the subject
    promote(store, "fraud", register(store, "fraud", "tx@d4"))
    request = store.request_erasure(SUBJECT, reason="ticket 1")

    plan = store.rollback_plan("fraud")

    assert plan.target == 1
    assert any(f"erasure request #{request.id}" in p for p in plan.problems)
    assert_rollback_refused_as_planned(store, plan)
    store.justify_erasure(request.id, "fraud", 1, reason="counsel approved keeping v1")
    assert_rollback_restores(store, store.rollback_plan("fraud"), None)


# ---------------------------------------------------------------- what it shows


def test_the_latest_checks_are_shown_and_a_failed_one_is_a_warning(
    store: RegistryStore,
) -> None:
    serve_in_turn(store, "fraud", 2)  # v1 passed health in every region on its way in
    store.record_check("fraud", 1, "health", region="eu-west", passed=False, evidence={})

    plan = store.rollback_plan("fraud")

    latest = {(c.kind, c.region): c.passed for c in plan.checks}
    assert latest[("health", "eu-west")] is False
    assert latest[("health", "us-east")] is True
    assert latest[("canary", None)] is True
    assert len(plan.checks) == len(latest)  # one per kind and region: the newest
    (warning,) = plan.warnings
    assert warning.startswith("latest health check in eu-west failed")
    assert_rollback_restores(store, plan, None)  # the emergency path asks for no health


def test_planning_changes_nothing(store: RegistryStore) -> None:
    serve_in_turn(store, "fraud", 2)
    register_versions(store, "fraud", 1)
    seq, generation = store.latest_seq(), store.get_model("fraud").generation

    store.rollback_plan("fraud")
    store.rollback_plan("fraud", to=3)
    store.rollback_plans()

    assert (store.latest_seq(), store.get_model("fraud").generation) == (seq, generation)
    assert store.rollback_plan("fraud").generation == generation


def test_plans_of_many_models_in_one_call(store: RegistryStore) -> None:
    serve_in_turn(store, "fraud", 2)
    serve_in_turn(store, "churn", 1)
    register_versions(store, "ads", 1)

    plans = store.rollback_plans()

    assert [(p.name, p.target, p.safe) for p in plans] == [
        ("ads", None, False),
        ("churn", None, False),
        ("fraud", 1, True),
    ]
    single = store.rollback_plan("fraud")
    assert plans[2].model_copy(update={"why": single.why}) == single
    assert [p.name for p in store.rollback_plans(["fraud", "ads"])] == ["ads", "fraud"]
    assert store.rollback_plans([]) == []
    with pytest.raises(NotFound, match="'ghost' not found"):
        store.rollback_plans(["fraud", "ghost"])
    with pytest.raises(NotFound, match="'ghost' not found"):
        store.rollback_plan("ghost")


def test_a_scoped_token_plans_only_its_models(store: RegistryStore) -> None:
    serve_in_turn(store, "pay/fraud", 2)
    serve_in_turn(store, "ads/ctr", 2)
    reader = GuardedStore(store, Principal("ci", Role.READER, (Scope.parse("pay/*"),)))

    assert [p.name for p in reader.rollback_plans()] == ["pay/fraud"]
    assert reader.rollback_plan("pay/fraud").target == 1
    with pytest.raises(NotFound, match="'ads/ctr' not found"):
        reader.rollback_plan("ads/ctr")
    with pytest.raises(NotFound, match="'ads/ctr' not found"):
        reader.rollback_plans(["pay/fraud", "ads/ctr"])
