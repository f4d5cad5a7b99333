"""Release policies kept in the registry: versioned, evented, validated, and what the
None -> Staging metric rules decide on."""

from __future__ import annotations

from typing import Any

import pytest

from registry.errors import GateRefused, InvalidInput, NotFound
from registry.models import Stage
from registry.release.policy import Gate, ReleasePolicy
from registry.store.sql import SqlStore

from .support import promote, register_versions

STRICT = ReleasePolicy.parse({"staging": ["auc >= 0.9"], "regions": ["us-east"]})
LOOSE = ReleasePolicy.parse({"staging": ["auc >= 0.5"], "regions": ["us-east"]})


# ---------------------------------------------------------------- storing policies


def test_a_model_without_a_policy_has_the_default_as_version_0(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)

    record = store.get_policy("fraud")

    assert (record.version, record.policy, record.actor) == (0, ReleasePolicy(), None)
    assert record.policy.required == (Gate.REPLICAS, Gate.HEALTH, Gate.CANARY, Gate.SIGNATURE)
    assert store.policy_history("fraud") == []


def test_the_policy_of_a_missing_model_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.get_policy("nosuch")


def test_setting_a_policy_creates_the_model(store: SqlStore) -> None:
    record = store.set_policy("fraud", STRICT, reason="before the first version")

    assert record.version == 1
    assert store.get_model("fraud").latest_version == 0
    assert store.get_policy("fraud").policy == STRICT


def test_policy_versions_increase_and_the_newest_is_in_force(store: SqlStore) -> None:
    store.set_policy("fraud", STRICT, reason="start strict")
    store.set_policy("fraud", LOOSE, reason="relax")

    assert store.get_policy("fraud").version == 2
    assert store.get_policy("fraud").policy == LOOSE
    assert [(r.version, r.policy, r.reason) for r in store.policy_history("fraud")] == [
        (1, STRICT, "start strict"),
        (2, LOOSE, "relax"),
    ]


def test_a_policy_change_is_an_event_with_actor_and_reason(store: SqlStore) -> None:
    store.set_policy("fraud", STRICT, reason="start strict")
    generation = store.get_model("fraud").generation

    store.set_policy("fraud", LOOSE, reason="relax")

    event = store.history("fraud")[-1]
    assert (event.kind, event.from_value, event.to_value, event.actor, event.reason) == (
        "policy",
        "1",
        "2",
        "tester",
        "relax",
    )
    assert store.get_model("fraud").generation == generation  # no pointer moved
    assert store.policy_history("fraud")[-1].actor == "tester"


@pytest.mark.parametrize("reason", ["", "  "], ids=repr)
def test_a_policy_change_needs_a_reason(store: SqlStore, reason: str) -> None:
    with pytest.raises(InvalidInput, match="needs a reason"):
        store.set_policy("fraud", STRICT, reason=reason)

    with pytest.raises(NotFound):
        store.get_model("fraud")


def test_a_yaml_policy_reads_back_as_written(store: SqlStore) -> None:
    policy = ReleasePolicy.from_text(
        """
        required: [replicas, health, canary, signature, approval]
        staging: ["auc >= 0.75", "auc >= production.auc - 0.01", "latency_p99_ms <= 25"]
        regions: [us-east, eu-west]
        protected_aliases: [production, champion, blue]
        canary: {alpha: 0.01, margin: 0.02, min_samples: 500}
        approvals: {required: 2, timeout_s: 600}
        """
    )

    store.set_policy("fraud", policy, reason="fraud team policy")

    stored = store.get_policy("fraud").policy
    assert stored == policy
    assert [str(rule) for rule in stored.staging] == [
        "auc >= 0.75",
        "auc >= production.auc - 0.01",
        "latency_p99_ms <= 25",
    ]
    assert (stored.canary.min_samples, stored.approvals.required) == (500, 2)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"required": ["replicas", "smoke-test"]}, "unknown gate 'smoke-test'"),
        ({"required": ["replicas", "replicas"]}, "names a gate twice"),
        ({"staging": ["auc > 0.75"]}, "cannot read metric rule 'auc > 0.75'"),
        ({"staging": ["auc >= nan"]}, "cannot read metric rule 'auc >= nan'"),
        ({"staging": ["auc >= 1e999"]}, "needs a finite number"),
        ({"staging": "auc >= 0.75"}, "staging must be a list"),
        ({"regions": ["us-east", "us-east"]}, "names a region twice"),
        ({"regions": []}, "non-empty list"),
        ({"canary": {"alpha": float("nan")}}, "canary.alpha"),
        ({"approvals": {"required": -1}}, "approvals.required"),
        ({"owner": "fraud-team"}, "owner"),
    ],
    ids=repr,
)
def test_an_invalid_policy_is_one_line_of_invalid_input(
    store: SqlStore, document: dict[str, Any], message: str
) -> None:
    register_versions(store, "fraud", 1)

    with pytest.raises(InvalidInput, match="invalid policy") as raised:
        store.set_policy("fraud", document, reason="r")  # type: ignore[arg-type]

    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert store.policy_history("fraud") == []


def test_an_unreadable_yaml_policy_is_one_line_of_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not valid YAML") as raised:
        ReleasePolicy.from_text("staging: [auc >= 0.75\nregions: x")

    assert "\n" not in str(raised.value)


# ---------------------------------------------------------------- staging rules


def _with_rules(store: SqlStore, *rules: str) -> SqlStore:
    store.set_policy("fraud", ReleasePolicy.parse({"staging": list(rules)}), reason="rules")
    return store


def _register(store: SqlStore, **metrics: float) -> int:
    return register_versions(store, "fraud", 1, metrics=metrics)[0].version


def test_a_candidate_below_a_floor_is_refused_from_staging(store: SqlStore) -> None:
    _with_rules(store, "auc >= 0.75")
    version = _register(store, auc=0.7)

    with pytest.raises(GateRefused) as raised:
        store.transition("fraud", version, Stage.STAGING)

    assert raised.value.reasons == ("auc 0.7000 is not >= 0.75",)
    assert store.get_version("fraud", version).stage is Stage.NONE
    event = store.history("fraud")[-1]
    assert (event.kind, event.subject, event.details.gate) == ("refused", "Staging", "staging")


@pytest.mark.parametrize(("latency", "ok"), [(25.0, True), (25.5, False)])
def test_a_ceiling_rule(store: SqlStore, latency: float, ok: bool) -> None:
    _with_rules(store, "latency_p99_ms <= 25")
    version = _register(store, latency_p99_ms=latency)

    if ok:
        store.transition("fraud", version, Stage.STAGING)
        assert store.get_version("fraud", version).stage is Stage.STAGING
    else:
        with pytest.raises(GateRefused, match=r"latency_p99_ms 25\.5000 is not <= 25"):
            store.transition("fraud", version, Stage.STAGING)


def test_a_missing_metric_is_refused(store: SqlStore) -> None:
    _with_rules(store, "auc >= 0.75")
    version = _register(store, f1=0.9)

    with pytest.raises(GateRefused, match="candidate has no finite auc metric"):
        store.transition("fraud", version, Stage.STAGING)


def test_the_default_policy_has_no_metric_rules(store: SqlStore) -> None:
    version = _register(store)

    store.transition("fraud", version, Stage.STAGING)

    assert store.get_version("fraud", version).stage is Stage.STAGING


def test_the_first_release_skips_the_no_regression_rule(store: SqlStore) -> None:
    _with_rules(store, "auc >= production.auc - 0.01")
    version = _register(store, auc=0.5)

    store.transition("fraud", version, Stage.STAGING)

    assert store.get_version("fraud", version).stage is Stage.STAGING


@pytest.fixture
def serving_at_090(store: SqlStore) -> SqlStore:
    """fraud v1 (auc 0.90) serves; the rule allows at most 0.01 of regression."""
    _register(store, auc=0.90)
    promote(store, "fraud", 1)
    return _with_rules(store, "auc >= production.auc - 0.01")


def test_a_regression_against_production_is_refused(serving_at_090: SqlStore) -> None:
    version = _register(serving_at_090, auc=0.88)

    with pytest.raises(GateRefused) as raised:
        serving_at_090.transition("fraud", version, Stage.STAGING)

    (reason,) = raised.value.reasons
    assert reason.startswith("auc 0.8800 is not >= production.auc - 0.01 = 0.8900")
    assert "production v1 has 0.9000" in reason


def test_a_candidate_within_the_margin_is_staged(serving_at_090: SqlStore) -> None:
    version = _register(serving_at_090, auc=0.895)

    serving_at_090.transition("fraud", version, Stage.STAGING)

    assert serving_at_090.get_version("fraud", version).stage is Stage.STAGING


def _evaluate(store: SqlStore, version: int, **evidence: Any) -> None:
    store.record_check("fraud", version, "evaluation", passed=True, evidence=evidence)


def test_an_evaluation_check_is_preferred_over_registered_metrics(
    serving_at_090: SqlStore,
) -> None:
    version = _register(serving_at_090, auc=0.99)  # what training claimed
    _evaluate(serving_at_090, version, metrics={"auc": 0.80})  # what the holdout said

    with pytest.raises(GateRefused, match=r"auc 0\.8000 is not >="):
        serving_at_090.transition("fraud", version, Stage.STAGING)


def test_the_latest_evaluation_check_counts(serving_at_090: SqlStore) -> None:
    version = _register(serving_at_090, auc=0.80)
    _evaluate(serving_at_090, version, metrics={"auc": 0.80})
    _evaluate(serving_at_090, version, metrics={"auc": 0.92})

    serving_at_090.transition("fraud", version, Stage.STAGING)

    assert serving_at_090.get_version("fraud", version).stage is Stage.STAGING


def test_production_measured_on_the_same_holdout_is_the_baseline(
    serving_at_090: SqlStore,
) -> None:
    version = _register(serving_at_090, auc=0.85)
    _evaluate(
        serving_at_090,
        version,
        metrics={"auc": 0.85},
        production_version=1,
        production_metrics={"auc": 0.855},
    )

    serving_at_090.transition("fraud", version, Stage.STAGING)

    assert serving_at_090.get_version("fraud", version).stage is Stage.STAGING


def test_a_holdout_baseline_of_another_production_version_is_ignored(
    serving_at_090: SqlStore,
) -> None:
    version = _register(serving_at_090, auc=0.85)
    _evaluate(
        serving_at_090,
        version,
        metrics={"auc": 0.85},
        production_version=7,  # not what serves now: v1's registered 0.90 applies
        production_metrics={"auc": 0.855},
    )

    with pytest.raises(GateRefused, match=r"production v1 has 0\.9000"):
        serving_at_090.transition("fraud", version, Stage.STAGING)


def test_a_forced_staging_skips_the_rules_and_says_so(serving_at_090: SqlStore) -> None:
    version = _register(serving_at_090, auc=0.1)

    change = serving_at_090.transition(
        "fraud", version, Stage.STAGING, force=True, reason="shadow test only"
    )

    details = change.events[-1].details
    assert (details.forced, details.skipped) == (True, ("stage", "staging-metrics"))
    assert details.reasons[0].startswith("auc 0.1000 is not >=")


def test_the_rules_in_force_are_the_newest_policy(store: SqlStore) -> None:
    version = _register(store, auc=0.7)
    store.set_policy("fraud", STRICT, reason="strict")
    with pytest.raises(GateRefused):
        store.transition("fraud", version, Stage.STAGING)

    store.set_policy("fraud", LOOSE, reason="relax")
    store.transition("fraud", version, Stage.STAGING)

    assert store.get_version("fraud", version).stage is Stage.STAGING


def test_a_stored_policy_keeps_every_digit_of_its_rules(store: SqlStore) -> None:
    policy = ReleasePolicy.parse(
        {"staging": ["auc >= 0.7512345", "auc >= production.auc - 0.0012345", "p99 <= 1e-7"]}
    )

    store.set_policy("fraud", policy, reason="precise")

    assert store.get_policy("fraud").policy == policy
