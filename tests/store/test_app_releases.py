"""App releases: the feature schema a release's code sends, bound to a model version (pinned,
or following a pointer), with model-code skew refused at binding and at promotion."""

from __future__ import annotations

from typing import Any

import pytest
from release_facts import make_releasable

from registry.errors import Conflict, GateRefused, InvalidInput, NotFound
from registry.models import Signature, Stage
from registry.store.sql import SqlStore

from .support import promote, register_versions

AMOUNT = {"name": "amount", "dtype": "float64"}
MERCHANT = {"name": "merchant_category", "dtype": "category"}
DEVICE = {"name": "device_id", "dtype": "string"}


def _signature(*features: dict[str, str]) -> dict[str, Any]:
    return {"features": list(features), "preprocessing_version": "fe-2.3"}


V1_SCHEMA = Signature.model_validate(_signature(AMOUNT))  # what 1.0.0's code sends
V2_SCHEMA = Signature.model_validate(_signature(AMOUNT, MERCHANT))  # 2.0.0 adds a feature


@pytest.fixture
def serving(store: SqlStore) -> SqlStore:
    """fraud v1 (trained on amount) serves; fraud-service 1.0.0 and 2.0.0 exist, unbound."""
    register_versions(store, "fraud", 1, signature=_signature(AMOUNT))
    promote(store, "fraud", 1)
    store.create_app_release("fraud-service", "1.0.0", V1_SCHEMA, description="first")
    store.create_app_release("fraud-service", "2.0.0", V2_SCHEMA)
    return store


def _stage_candidate(store: SqlStore, *features: dict[str, str]) -> int:
    """A new fraud version with this signature, staged and passing every other gate."""
    (mv,) = register_versions(store, "fraud", 1, signature=_signature(*features))
    store.transition("fraud", mv.version, Stage.STAGING)
    make_releasable(store, "fraud", mv.version)
    return mv.version


def test_a_release_is_created_with_its_schema(serving: SqlStore) -> None:
    release = serving.get_app_release("fraud-service", "1.0.0")

    assert (release.app, release.release, release.feature_schema) == (
        "fraud-service",
        "1.0.0",
        V1_SCHEMA,
    )
    assert (release.description, release.created_by, release.bindings) == ("first", "tester", ())


def test_a_release_that_exists_is_a_conflict(serving: SqlStore) -> None:
    with pytest.raises(Conflict, match=r"fraud-service@1\.0\.0 exists"):
        serving.create_app_release("fraud-service", "1.0.0", V2_SCHEMA)

    assert serving.get_app_release("fraud-service", "1.0.0").feature_schema == V1_SCHEMA


def test_releases_are_listed_per_app(serving: SqlStore) -> None:
    serving.create_app_release("chargeback", "0.1", V1_SCHEMA)

    assert [r.release for r in serving.list_app_releases("fraud-service")] == ["1.0.0", "2.0.0"]
    assert [(r.app, r.release) for r in serving.list_app_releases()] == [
        ("chargeback", "0.1"),
        ("fraud-service", "1.0.0"),
        ("fraud-service", "2.0.0"),
    ]


def test_a_missing_release_is_not_found(serving: SqlStore) -> None:
    with pytest.raises(NotFound):
        serving.get_app_release("fraud-service", "9.9.9")
    with pytest.raises(NotFound):
        serving.bind_app_release("fraud-service", "9.9.9", "fraud", version=1)


def test_binding_a_pinned_version(serving: SqlStore) -> None:
    release = serving.bind_app_release("fraud-service", "1.0.0", "fraud", version=1, reason="ship")

    ((model, version, follow, by),) = [
        (b.model, b.version, b.follow, b.bound_by) for b in release.bindings
    ]
    assert (model, version, follow, by) == ("fraud", 1, None, "tester")
    assert serving.resolve_app_release("fraud-service", "1.0.0") == ("fraud", 1)


def test_a_binding_is_an_event(serving: SqlStore) -> None:
    serving.bind_app_release("fraud-service", "1.0.0", "fraud", follow="production", reason="go")

    event = serving.history("fraud")[-1]
    assert (event.kind, event.subject, event.to_value, event.reason) == (
        "binding",
        "fraud-service@1.0.0",
        "follow production",
        "go",
    )


@pytest.mark.parametrize(
    "kwargs", [{}, {"version": 1, "follow": "production"}], ids=["neither", "both"]
)
def test_a_binding_takes_a_version_or_a_pointer(serving: SqlStore, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="either a version"):
        serving.bind_app_release("fraud-service", "1.0.0", "fraud", **kwargs)


def test_a_binding_whose_signature_lacks_a_sent_feature_is_refused(serving: SqlStore) -> None:
    with pytest.raises(GateRefused, match="merchant_category") as raised:
        serving.bind_app_release("fraud-service", "2.0.0", "fraud", version=1)

    (reason,) = raised.value.reasons
    assert "fraud-service@2.0.0" in reason
    assert "extra merchant_category" in reason
    assert serving.get_app_release("fraud-service", "2.0.0").bindings == ()


def test_a_refused_binding_is_a_refused_event(serving: SqlStore) -> None:
    with pytest.raises(GateRefused) as raised:
        serving.bind_app_release("fraud-service", "2.0.0", "fraud", follow="production")

    event = serving.history("fraud")[-1]
    assert (event.kind, event.version, event.subject) == ("refused", 1, "fraud-service@2.0.0")
    assert (event.details.gate, event.details.reasons) == ("binding", raised.value.reasons)


def test_a_forced_binding_is_recorded_as_forced(serving: SqlStore) -> None:
    release = serving.bind_app_release(
        "fraud-service", "2.0.0", "fraud", version=1, force=True, reason="feature flag off"
    )

    assert [b.version for b in release.bindings] == [1]
    event = serving.history("fraud")[-1]
    assert (event.kind, event.details.forced, event.details.skipped) == (
        "binding",
        True,
        ("signature",),
    )
    assert "merchant_category" in event.details.reasons[0]


def test_a_forced_binding_needs_a_reason(serving: SqlStore) -> None:
    with pytest.raises(InvalidInput, match="needs a reason"):
        serving.bind_app_release("fraud-service", "2.0.0", "fraud", version=1, force=True)


def test_a_version_without_a_signature_cannot_be_bound(serving: SqlStore) -> None:
    register_versions(serving, "fraud", 1)  # v2, no signature

    with pytest.raises(GateRefused, match="v2 has no signature"):
        serving.bind_app_release("fraud-service", "1.0.0", "fraud", version=2)


def test_a_release_following_production_resolves_to_what_serves(serving: SqlStore) -> None:
    serving.bind_app_release("fraud-service", "1.0.0", "fraud", follow="production")
    candidate = _stage_candidate(serving, AMOUNT)

    assert serving.resolve_app_release("fraud-service", "1.0.0") == ("fraud", 1)
    serving.promote("fraud", candidate)
    assert serving.resolve_app_release("fraud-service", "1.0.0") == ("fraud", candidate)
    (binding,) = serving.get_app_release("fraud-service", "1.0.0").bindings
    assert (binding.version, binding.follow) == (candidate, "production")


def test_a_pinned_release_stays_on_its_version(serving: SqlStore) -> None:
    serving.bind_app_release("fraud-service", "1.0.0", "fraud", version=1)
    serving.promote("fraud", _stage_candidate(serving, AMOUNT))

    assert serving.resolve_app_release("fraud-service", "1.0.0") == ("fraud", 1)


def test_promotion_is_refused_when_a_following_release_sends_other_features(
    serving: SqlStore,
) -> None:
    serving.bind_app_release("fraud-service", "1.0.0", "fraud", follow="production")
    candidate = _stage_candidate(serving, AMOUNT, DEVICE)  # needs a feature 1.0.0 never sends

    with pytest.raises(GateRefused) as raised:
        serving.promote("fraud", candidate)

    (reason,) = raised.value.reasons
    assert "fraud-service@1.0.0" in reason
    assert "missing device_id" in reason
    assert serving.get_model("fraud").production == 1
    assert serving.history("fraud")[-1].details.gate == "promotion"


def test_a_pinned_release_does_not_block_a_promotion(serving: SqlStore) -> None:
    serving.bind_app_release("fraud-service", "1.0.0", "fraud", version=1)
    candidate = _stage_candidate(serving, AMOUNT, DEVICE)

    serving.promote("fraud", candidate)

    assert serving.get_model("fraud").production == candidate


def test_a_release_following_an_alias_guards_that_alias(serving: SqlStore) -> None:
    serving.set_aliases("fraud", {"champion": 1})
    serving.bind_app_release("fraud-service", "1.0.0", "fraud", follow="champion")
    candidate = _stage_candidate(serving, AMOUNT, DEVICE)

    with pytest.raises(GateRefused, match=r"fraud-service@1\.0\.0 \(follows champion\)"):
        serving.set_aliases("fraud", {"champion": candidate})

    assert serving.resolve_app_release("fraud-service", "1.0.0") == ("fraud", 1)


def test_a_release_following_a_pointer_that_names_nothing_does_not_resolve(
    store: SqlStore,
) -> None:
    register_versions(store, "fraud", 1, signature=_signature(AMOUNT))
    store.create_app_release("fraud-service", "1.0.0", V1_SCHEMA)
    store.bind_app_release("fraud-service", "1.0.0", "fraud", follow="production")

    with pytest.raises(NotFound, match="points at no version"):
        store.resolve_app_release("fraud-service", "1.0.0")


def test_moving_an_unprotected_alias_a_release_follows_is_checked_for_skew(
    serving: SqlStore,
) -> None:
    """A release may follow any alias; moving it is what the release will load next, so
    skew must be refused there too, protected alias or not."""
    serving.set_aliases("fraud", {"shadow": 1})
    serving.bind_app_release("fraud-service", "1.0.0", "fraud", follow="shadow")
    candidate = _stage_candidate(serving, AMOUNT, DEVICE)

    with pytest.raises(GateRefused, match="device_id"):
        serving.set_aliases("fraud", {"shadow": candidate})

    assert serving.resolve_app_release("fraud-service", "1.0.0") == ("fraud", 1)


def test_archiving_production_while_a_release_follows_it_needs_force(serving: SqlStore) -> None:
    serving.bind_app_release("fraud-service", "1.0.0", "fraud", follow="production")
    generation = serving.get_model("fraud").generation

    with pytest.raises(GateRefused, match=r"fraud-service@1\.0\.0 follow production") as refused:
        serving.transition("fraud", 1, Stage.ARCHIVED, reason="retire")

    assert "leaves them no model" in refused.value.reasons[0]
    assert serving.get_model("fraud").generation == generation
    assert serving.history("fraud")[-1].details.gate == "archive"
    change = serving.transition("fraud", 1, Stage.ARCHIVED, reason="retire it all", force=True)
    assert change.events[-1].details.forced
    assert serving.get_model("fraud").production is None


def test_archiving_production_nobody_follows_is_not_gated(serving: SqlStore) -> None:
    serving.transition("fraud", 1, Stage.ARCHIVED, reason="retire")

    assert serving.get_model("fraud").production is None


def test_a_rollback_to_a_version_a_following_release_cannot_feed_is_refused(
    serving: SqlStore,
) -> None:
    v2 = _stage_candidate(serving, AMOUNT, MERCHANT)
    serving.promote("fraud", v2)
    # fraud-service 2.0.0 sends merchant_category and follows production (v2 takes it).
    serving.bind_app_release("fraud-service", "2.0.0", "fraud", follow="production")

    with pytest.raises(GateRefused, match="merchant_category") as refused:
        serving.rollback("fraud", reason="bad p99")

    assert "fraud-service@2.0.0" in refused.value.reasons[0]
    assert serving.get_model("fraud").production == v2
    change = serving.rollback("fraud", reason="roll the service back too", force=True)
    assert change.events[0].details.skipped == ("replicas", "signature")
    assert serving.get_model("fraud").production == 1
