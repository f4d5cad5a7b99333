"""The flows are doors to Production like any other: the store's gates hold for them,
the policy comes from the registry, and a refusal is history naming the run.

(The retrain door with a region that fails replication is
``test_flow_release.py::test_one_region_failing_replication_blocks_promotion``.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flow_helpers import (
    MODEL,
    flow_run,
    fraud_policy,
    open_store,
    production,
    refusals,
    register_copy,
    register_staged,
    set_policy,
)

from flows.promote import promote_flow
from flows.retrain import retrain_flow
from registry import GateRefused, Stage
from registry.models import Feature
from registry.release.policy import ReleasePolicy

pytestmark = pytest.mark.slow

NEW_FEATURE = "home_distance_km"  # a geolocation feature no version was trained on


def follow_production_with_a_new_feature(home: Path) -> None:
    """fraud-service 2.0.0 sends a feature no version was trained on, and follows
    Production: bound by break-glass, since the binding gate refuses it."""
    with open_store(home) as store:
        signature = store.get_version(MODEL, 2).signature
        assert signature is not None and NEW_FEATURE not in [f.name for f in signature.features]
        extra = Feature(name=NEW_FEATURE, dtype="float64")
        sends = signature.model_copy(update={"features": [*signature.features, extra]})
        store.create_app_release("fraud-service", "2.0.0", sends)
        with pytest.raises(GateRefused, match=NEW_FEATURE):
            store.bind_app_release("fraud-service", "2.0.0", MODEL, follow="production")
        store.bind_app_release(
            "fraud-service",
            "2.0.0",
            MODEL,
            follow="production",
            force=True,
            reason="test: the service shipped before the model",
        )


def test_the_promote_flow_cannot_release_a_version_an_app_release_cannot_use(
    released_home: Path,
) -> None:
    follow_production_with_a_new_feature(released_home)
    candidate = register_staged(released_home, artifact_of=2, golden_of=2)
    state = promote_flow(version=candidate, model=MODEL, reason="ship it", return_state=True)
    assert state.is_failed() and state.name == "Refused", state.message
    assert "fraud-service@2.0.0" in state.message and NEW_FEATURE in state.message
    assert production(released_home) == 2
    with open_store(released_home) as store:
        assert store.get_version(MODEL, candidate).stage is Stage.STAGING
        # Every other gate passed: only the skew stands in the way.
        assert all(c.passed for c in store.latest_checks(MODEL, candidate, "health").values())
        assert store.latest_checks(MODEL, candidate, "canary")[None].passed
    [refusal] = refusals(released_home, candidate)
    assert refusal.details.gate == "promotion" and refusal.subject == "Production"
    [skew] = refusal.details.reasons
    assert skew.startswith("model-code skew with fraud-service@2.0.0 (follows production)")
    assert NEW_FEATURE in skew
    run = flow_run(state)
    origin = refusal.details.origin
    assert origin is not None
    assert (origin.flow, origin.run_id, origin.run_name) == ("promote", str(run.id), run.name)


def test_thresholds_cannot_be_passed_to_the_retrain_flow() -> None:
    from prefect.utilities.callables import parameter_schema

    with pytest.raises(TypeError, match="thresholds"):
        retrain_flow(model=MODEL, thresholds={"auc": 0.0}, return_state=True)  # type: ignore[call-arg]
    # Nor from the UI's run form, which is built from the flow's signature.
    for flow in (retrain_flow, promote_flow):
        properties = parameter_schema(flow).properties
        assert "thresholds" not in properties and "serving_schema" not in properties


def test_a_stricter_policy_in_the_registry_refuses_what_the_default_passes(
    released_home: Path,
) -> None:
    candidate = register_copy(released_home, artifact_of=2, golden_of=2)
    set_policy(released_home, fraud_policy(staging=["auc >= 0.999"]), reason="test: stricter")
    state = promote_flow(version=candidate, model=MODEL, return_state=True)
    assert state.name == "Refused", state.message
    [refusal] = refusals(released_home, candidate)
    assert refusal.details.gate == "staging"
    [reason] = refusal.details.reasons
    assert reason.startswith("auc ") and reason.endswith("is not >= 0.999")
    origin = refusal.details.origin
    assert origin is not None and origin.flow == "promote"
    with open_store(released_home) as store:
        assert store.get_version(MODEL, candidate).stage is Stage.NONE
        # The default policy has no staging rules: the same version passes it.
        store.set_policy(MODEL, ReleasePolicy(), reason="test: back to the default")
        store.transition(MODEL, candidate, Stage.STAGING, reason="test: the default passes")
        assert store.get_version(MODEL, candidate).stage is Stage.STAGING
