"""Rollback is the emergency path: no canary or health gate, but the target's bytes must
be verified in every region of the policy, and its event tells resolvers to switch now."""

from __future__ import annotations

import pytest
from release_facts import make_releasable, replicate_everywhere

from registry.errors import GateRefused
from registry.models import Stage
from registry.release.policy import ReleasePolicy
from registry.release_models import ReplicaState
from registry.store.sql import SqlStore

from .support import promote, register_versions


@pytest.fixture
def half_replicated(store: SqlStore) -> SqlStore:
    """fraud v1 served (forced in, its bytes only in us-east); v2 serves now, through
    the gates."""
    register_versions(store, "fraud", 2)
    store.transition("fraud", 1, Stage.STAGING)
    replicate_everywhere(store, "fraud", 1, regions=["us-east"])
    store.promote("fraud", 1, force=True, reason="first release, before replication")
    promote(store, "fraud", 2)
    return store


def test_rollback_is_refused_naming_the_regions_without_a_replica(
    half_replicated: SqlStore,
) -> None:
    with pytest.raises(GateRefused) as raised:
        half_replicated.rollback("fraud", reason="bad p99")

    assert raised.value.reasons == (
        "v1 is not verified in eu-west (no replica), ap-south (no replica): replicate it first",
    )
    assert "us-east" not in str(raised.value)


def test_a_refused_rollback_is_an_event_and_moves_nothing(half_replicated: SqlStore) -> None:
    generation = half_replicated.get_model("fraud").generation

    with pytest.raises(GateRefused) as raised:
        half_replicated.rollback("fraud", reason="bad p99")

    event = half_replicated.history("fraud")[-1]
    assert (event.kind, event.version, event.reason) == ("refused", 1, "bad p99")
    assert (event.details.gate, event.details.reasons) == ("rollback", raised.value.reasons)
    model = half_replicated.get_model("fraud")
    assert (model.production, model.generation) == (2, generation)


def test_a_failed_replica_is_named_with_its_error(half_replicated: SqlStore) -> None:
    replicate_everywhere(half_replicated, "fraud", 1)
    half_replicated.record_replica("fraud", 1, "eu-west", ReplicaState.FAILED, error="timeout")

    with pytest.raises(GateRefused) as raised:
        half_replicated.rollback("fraud", reason="bad p99")

    assert raised.value.reasons == (
        "v1 is not verified in eu-west (failed: timeout): replicate it first",
    )


def test_forced_rollback_goes_through_and_is_recorded(half_replicated: SqlStore) -> None:
    change = half_replicated.rollback("fraud", reason="cold start is better than this", force=True)

    assert half_replicated.get_model("fraud").production == 1
    (event,) = change.events
    assert event.kind == "rollback"
    assert (event.details.forced, event.details.skipped, event.details.invalidate) == (
        True,
        ("replicas", "signature"),  # every gate of a rollback under the default policy
        True,
    )
    assert "eu-west (no replica)" in event.details.reasons[0]


def test_rollback_once_replicated_goes_through(half_replicated: SqlStore) -> None:
    replicate_everywhere(half_replicated, "fraud", 1)

    change = half_replicated.rollback("fraud", reason="bad p99")

    assert half_replicated.get_model("fraud").production == 1
    (event,) = change.events
    assert (event.from_value, event.to_value, event.details.forced) == ("2", "1", False)


def test_the_rollback_event_says_invalidate_now(store: SqlStore) -> None:
    register_versions(store, "fraud", 2)
    promote(store, "fraud", 1)
    promote(store, "fraud", 2)

    change = store.rollback("fraud", reason="bad p99")

    assert change.events[0].details.invalidate
    assert store.history("fraud")[-1].details.invalidate


def test_rollback_asks_for_no_health_or_canary(store: SqlStore) -> None:
    register_versions(store, "fraud", 2)
    promote(store, "fraud", 1)
    promote(store, "fraud", 2)
    for region in ("us-east", "eu-west", "ap-south"):
        store.record_check("fraud", 1, "health", region=region, passed=False, evidence={})
    store.record_check("fraud", 1, "canary", passed=False, evidence={"decision": "inferior"})

    store.rollback("fraud", reason="v2 is worse")

    assert store.get_model("fraud").production == 1


def test_rollback_needs_only_the_policy_regions(half_replicated: SqlStore) -> None:
    half_replicated.set_policy(
        "fraud", ReleasePolicy.parse({"regions": ["us-east"]}), reason="one region"
    )

    half_replicated.rollback("fraud", reason="bad p99")

    assert half_replicated.get_model("fraud").production == 1


def test_a_requested_rollback_target_is_checked_too(store: SqlStore) -> None:
    register_versions(store, "fraud", 3)
    promote(store, "fraud", 1)
    promote(store, "fraud", 2)
    store.transition("fraud", 3, Stage.STAGING)
    make_releasable(store, "fraud", 3)
    store.promote("fraud", 3)
    store.record_replica("fraud", 1, "ap-south", ReplicaState.PENDING)

    with pytest.raises(GateRefused, match=r"v1 is not verified in ap-south \(pending\)"):
        store.rollback("fraud", to=1, reason="back to the first")

    store.rollback("fraud", reason="the previous one is fine")
    assert store.get_model("fraud").production == 2


def test_a_rollback_with_nothing_to_go_back_to_is_a_refused_event(store: SqlStore) -> None:
    """Refusals are history: this one raises GateRefused like the replica refusal does."""
    register_versions(store, "fraud", 1)
    promote(store, "fraud", 1)

    with pytest.raises(GateRefused, match="no earlier Production version") as raised:
        store.rollback("fraud", reason="bad p99")

    event = store.history("fraud")[-1]
    assert (event.kind, event.reason, event.details.reasons) == (
        "refused",
        "bad p99",
        raised.value.reasons,
    )
