"""The pure release gates: staging metric rules, promotion's required gates, rollback,
binding and what a forced change skips. Plain facts in, a ``Decision`` out."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.models import Stage
from registry.release import gates
from registry.release.gates import (
    CanaryFacts,
    PromotionFacts,
    RegionFacts,
    ReleaseSkew,
    RollbackFacts,
    StagingFacts,
)
from registry.release.policy import ApprovalRule, Gate, ReleasePolicy

REGIONS = ("us-east", "eu-west", "ap-south")
FOLLOWER = ReleaseSkew(app="fraud-service", release="1.4.0", follow="production")
SKEWED = ReleaseSkew(
    app="fraud-service",
    release="2.0.0",
    follow="production",
    problems=("missing: merchant_category",),
    summary="missing merchant_category (preprocessing fe-2.3 vs fe-2.4)",
)
# Every gate, one approval: the strictest policy a model can have.
STRICT = ReleasePolicy(required=tuple(Gate), approvals=ApprovalRule(required=1))

# v5 in Staging, v4 serving: replicated and healthy everywhere, canaried against v4,
# compatible with the release that follows Production, approved by someone else.
GOOD = PromotionFacts(
    name="fraud",
    version=5,
    target="Production",
    stage=Stage.STAGING,
    generation=9,
    production=4,
    registrant="alice",
    has_signature=True,
    regions=tuple(RegionFacts(r, replica="verified", health=True) for r in REGIONS),
    canary=CanaryFacts(passed=True, decision="no regression", baseline_version=4),
    releases=(FOLLOWER,),
    approvers=("bob",),
    policy_version=2,
)

Change = Callable[[PromotionFacts], PromotionFacts]


def _in(region: str, **fields: Any) -> Change:
    """Change one region's facts."""

    def change(facts: PromotionFacts) -> PromotionFacts:
        regions = tuple(
            dataclasses.replace(r, **fields) if r.region == region else r for r in facts.regions
        )
        return dataclasses.replace(facts, regions=regions)

    return change


def _with(**fields: Any) -> Change:
    return lambda facts: dataclasses.replace(facts, **fields)


def _then(*changes: Change) -> Change:
    def change(facts: PromotionFacts) -> PromotionFacts:
        for step in changes:
            facts = step(facts)
        return facts

    return change


def _requiring(*required: Gate, approvals: int = 0) -> ReleasePolicy:
    return ReleasePolicy(required=required, approvals=ApprovalRule(required=approvals))


# ---------------------------------------------------------------- promotion, gate by gate

# (gate, what breaks it, the one reason it gives)
BROKEN: list[tuple[Gate, Change, str]] = [
    (Gate.REPLICAS, _in("eu-west", replica=None), "replica not verified in eu-west (no replica)"),
    (Gate.REPLICAS, _in("eu-west", replica="pending"), "replica not verified in eu-west (pending)"),
    (
        Gate.REPLICAS,
        _in("ap-south", replica="failed", replica_error="sha256 mismatch"),
        "replica not verified in ap-south (failed: sha256 mismatch)",
    ),
    (Gate.REPLICAS, _in("us-east", replica="stale"), "replica not verified in us-east (stale)"),
    (
        Gate.REPLICAS,
        _then(_in("us-east", replica=None), _in("ap-south", replica="pending")),
        "replica not verified in us-east (no replica), ap-south (pending)",
    ),
    (Gate.HEALTH, _in("eu-west", health=None), "no health check in eu-west"),
    (
        Gate.HEALTH,
        _then(_in("us-east", health=None), _in("ap-south", health=None)),
        "no health check in us-east, ap-south",
    ),
    (
        Gate.HEALTH,
        _in("eu-west", health=False, health_error="predictions differ from registration"),
        "health check failed in eu-west: predictions differ from registration",
    ),
    (Gate.HEALTH, _in("eu-west", health=False), "health check failed in eu-west: failed"),
    (Gate.CANARY, _with(canary=None), "no canary result"),
    (
        Gate.CANARY,
        _with(canary=CanaryFacts(False, "error rate 0.121 > 0.101 (p=0.003)", 4)),
        "canary failed: error rate 0.121 > 0.101 (p=0.003)",
    ),
    (Gate.CANARY, _with(canary=CanaryFacts(False, "", 4)), "canary failed: regression"),
    (
        Gate.CANARY,
        _with(canary=CanaryFacts(True, "no regression", 3)),
        "production changed since the canary (compared with v3, production is v4): "
        "re-run the canary",
    ),
    (
        Gate.CANARY,
        _with(canary=CanaryFacts(True, "no regression", None)),
        "production changed since the canary (compared with none, production is v4): "
        "re-run the canary",
    ),
    (
        Gate.SIGNATURE,
        _with(releases=(SKEWED,)),
        "model-code skew with fraud-service@2.0.0 (follows production): "
        "missing merchant_category (preprocessing fe-2.3 vs fe-2.4)",
    ),
    (
        Gate.SIGNATURE,
        _with(has_signature=False),
        "v5 has no signature, but fraud-service@1.4.0 follows production",
    ),
    (
        Gate.APPROVAL,
        _with(approvers=()),  # alice approved herself: the facts leave her out
        "needs 1 approval(s) from someone other than the registrant (alice); has 0 (none)",
    ),
]
BROKEN_IDS = [f"{gate.value}-{i}" for i, (gate, _, _) in enumerate(BROKEN)]


def test_a_candidate_that_meets_every_gate_is_promoted() -> None:
    decision = gates.promotion(STRICT, GOOD)

    assert decision.ok
    assert decision.reasons == ()
    assert decision.evidence is GOOD


@pytest.mark.parametrize(("gate", "breaks", "reason"), BROKEN, ids=BROKEN_IDS)
def test_a_required_gate_alone_refuses_and_says_why(
    gate: Gate, breaks: Change, reason: str
) -> None:
    decision = gates.promotion(_requiring(gate), breaks(GOOD))

    assert not decision.ok
    assert decision.reasons == (reason,)


@pytest.mark.parametrize(("gate", "breaks", "reason"), BROKEN, ids=BROKEN_IDS)
def test_a_gate_the_policy_does_not_require_ignores_its_facts(
    gate: Gate, breaks: Change, reason: str
) -> None:
    others = _requiring(*(g for g in Gate if g is not gate))

    assert gates.promotion(others, breaks(GOOD)).ok
    assert not gates.promotion(STRICT, breaks(GOOD)).ok


def test_every_unmet_gate_is_a_reason() -> None:
    facts = _then(
        _with(stage=Stage.NONE, canary=None, releases=(SKEWED,), approvers=()),
        _in("us-east", replica="pending", health=None),
    )(GOOD)

    reasons = gates.promotion(STRICT, facts).reasons

    assert reasons == (
        "v5 is in None, not Staging",
        "replica not verified in us-east (pending)",
        "no health check in us-east",
        "no canary result",
        "model-code skew with fraud-service@2.0.0 (follows production): "
        "missing merchant_category (preprocessing fe-2.3 vs fe-2.4)",
        "needs 1 approval(s) from someone other than the registrant (alice); has 0 (none)",
    )


def test_health_reports_the_unchecked_regions_and_each_failure() -> None:
    facts = _then(
        _in("us-east", health=None),
        _in("eu-west", health=False, health_error="timeout"),
        _in("ap-south", health=False, health_error="wrong dtype"),
    )(GOOD)

    assert gates.promotion(_requiring(Gate.HEALTH), facts).reasons == (
        "no health check in us-east",
        "health check failed in eu-west: timeout",
        "health check failed in ap-south: wrong dtype",
    )


def test_skew_is_checked_against_every_following_release() -> None:
    other = dataclasses.replace(SKEWED, app="risk-api", release="7", summary="extra geo_lat")
    facts = _with(releases=(FOLLOWER, SKEWED, other))(GOOD)

    reasons = gates.promotion(_requiring(Gate.SIGNATURE), facts).reasons

    assert len(reasons) == 2
    assert "fraud-service@2.0.0" in reasons[0]
    assert reasons[1] == "model-code skew with risk-api@7 (follows production): extra geo_lat"


def test_no_signature_refuses_once_per_following_release() -> None:
    facts = _with(has_signature=False, releases=(FOLLOWER, SKEWED))(GOOD)

    assert gates.promotion(_requiring(Gate.SIGNATURE), facts).reasons == (
        "v5 has no signature, but fraud-service@1.4.0 follows production",
        "v5 has no signature, but fraud-service@2.0.0 follows production",
    )


def test_no_signature_is_fine_when_no_release_follows() -> None:
    facts = _with(has_signature=False, releases=())(GOOD)

    assert gates.promotion(_requiring(Gate.SIGNATURE), facts).ok


@pytest.mark.parametrize(
    ("production", "baseline"),
    [(None, None), (4, 4)],
    ids=["first-release", "same-production"],
)
def test_a_canary_against_the_current_production_passes(
    production: int | None, baseline: int | None
) -> None:
    facts = _with(production=production, canary=CanaryFacts(True, "ok", baseline))(GOOD)

    assert gates.promotion(_requiring(Gate.CANARY), facts).ok


def test_the_candidate_already_in_production_keeps_its_canary_for_an_alias() -> None:
    # v5 serves already; its canary compared it with v4, the version before it.
    facts = _with(target="champion", stage=Stage.PRODUCTION, production=5)(GOOD)

    assert gates.promotion(_requiring(Gate.CANARY), facts).ok


# ---------------------------------------------------------------- approvals


@pytest.mark.parametrize(
    ("policy", "approvers", "reason"),
    [
        (
            _requiring(approvals=2),
            ("bob",),
            "needs 2 approval(s) from someone other than the registrant (alice); has 1 (bob)",
        ),
        (
            _requiring(approvals=3),
            ("bob", "carol"),
            "needs 3 approval(s) from someone other than the registrant (alice); "
            "has 2 (bob, carol)",
        ),
        (
            _requiring(Gate.APPROVAL),  # required, with no count: one person
            (),
            "needs 1 approval(s) from someone other than the registrant (alice); has 0 (none)",
        ),
    ],
    ids=["two-needed", "three-needed", "gate-without-count"],
)
def test_fewer_approvals_than_needed_refuse_naming_who_approved(
    policy: ReleasePolicy, approvers: tuple[str, ...], reason: str
) -> None:
    decision = gates.promotion(policy, _with(approvers=approvers)(GOOD))

    assert decision.reasons == (reason,)


@pytest.mark.parametrize(
    ("policy", "approvers"),
    [
        (_requiring(approvals=2), ("bob", "carol")),
        (_requiring(approvals=1), ("bob", "carol")),
        (_requiring(Gate.APPROVAL), ("bob",)),
        (_requiring(), ()),  # neither required nor counted: no approval needed
    ],
    ids=["exactly", "more", "gate-without-count", "none-needed"],
)
def test_enough_approvals_pass(policy: ReleasePolicy, approvers: tuple[str, ...]) -> None:
    assert gates.promotion(policy, _with(approvers=approvers)(GOOD)).ok


# ---------------------------------------------------------------- the stage rule


@pytest.mark.parametrize("stage", list(Stage), ids=lambda s: s.value)
def test_production_takes_only_a_staging_version(stage: Stage) -> None:
    decision = gates.promotion(_requiring(), _with(stage=stage)(GOOD))

    if stage is Stage.STAGING:
        assert decision.ok
    else:
        assert decision.reasons == (f"v5 is in {stage.value}, not Staging",)


@pytest.mark.parametrize("stage", list(Stage), ids=lambda s: s.value)
def test_a_protected_alias_takes_a_staging_or_production_version(stage: Stage) -> None:
    decision = gates.promotion(
        _requiring(Gate.REPLICAS), _with(target="champion", stage=stage)(GOOD)
    )

    if stage in (Stage.STAGING, Stage.PRODUCTION):
        assert decision.ok
    else:
        assert decision.reasons == (
            f"v5 is in {stage.value}: a protected alias takes a Staging or Production version",
        )


@pytest.mark.parametrize("stage", list(Stage), ids=lambda s: s.value)
def test_a_policy_requiring_no_gate_lets_a_protected_alias_take_any_version(stage: Stage) -> None:
    """As MLflow's aliases do: the migration path for teams that adopt the gates later."""
    assert gates.promotion(_requiring(), _with(target="champion", stage=stage)(GOOD)).ok
    assert not gates.promotion(
        _requiring(approvals=1), _with(target="champion", stage=stage, approvers=())(GOOD)
    ).ok


# ---------------------------------------------------------------- promotion as a property

STAGE_BREAKS: list[Change] = [_with(stage=s) for s in (Stage.NONE, Stage.ARCHIVED)]


@given(
    required=st.sets(st.sampled_from(list(Gate))),
    approvals=st.integers(min_value=0, max_value=3),
    stage_break=st.none() | st.sampled_from(STAGE_BREAKS),
    breaks=st.fixed_dictionaries(
        {gate: st.none() | st.sampled_from([b for g, b, _ in BROKEN if g is gate]) for gate in Gate}
    ),
)
def test_promotion_is_ok_iff_every_required_gate_is_met(
    required: set[Gate],
    approvals: int,
    stage_break: Change | None,
    breaks: Mapping[Gate, Change | None],
) -> None:
    policy = _requiring(*sorted(required), approvals=approvals)
    # Enough approvers for any count drawn, unless the approval gate is broken.
    facts = _with(approvers=("bob", "carol", "dave"))(GOOD)
    for change in [stage_break, *breaks.values()]:
        if change is not None:
            facts = change(facts)
    enforced = required | ({Gate.APPROVAL} if approvals else set())
    unmet = [g for g in enforced if breaks[g] is not None]

    decision = gates.promotion(policy, facts)

    assert decision.ok == (stage_break is None and not unmet)
    assert len(decision.reasons) == (stage_break is not None) + len(unmet)


# ---------------------------------------------------------------- staging


def _rules(*rules: str) -> ReleasePolicy:
    return ReleasePolicy.parse({"staging": list(rules)})


def _candidate(
    metrics: Mapping[str, float],
    production: Mapping[str, float] | None = None,
    *,
    stage: Stage = Stage.NONE,
) -> StagingFacts:
    return StagingFacts(
        version=7,
        stage=stage,
        metrics=metrics,
        metrics_source="evaluation check",
        production=None if production is None else 4,
        production_metrics=production,
        policy_version=1,
    )


@pytest.mark.parametrize(
    ("rule", "metrics"),
    [
        ("auc >= 0.75", {"auc": 0.75}),
        ("auc >= 0.75", {"auc": 0.93}),
        ("latency_p99_ms <= 25", {"latency_p99_ms": 25.0}),
        ("latency_p99_ms <= 25", {"latency_p99_ms": 0.4}),
        ("auc >= -1", {"auc": -0.5}),
    ],
)
def test_a_metric_on_the_right_side_of_its_floor_passes(
    rule: str, metrics: dict[str, float]
) -> None:
    assert gates.staging(_rules(rule), _candidate(metrics)).ok


@pytest.mark.parametrize(
    ("rule", "metrics", "reason"),
    [
        ("auc >= 0.75", {"auc": 0.7499}, "auc 0.7499 is not >= 0.75"),
        ("recall >= 0.2", {"recall": 0.1}, "recall 0.1000 is not >= 0.2"),
        ("latency_p99_ms <= 25", {"latency_p99_ms": 25.5}, "latency_p99_ms 25.5000 is not <= 25"),
        ("auc >= 0.75", {"recall": 0.9}, "candidate has no finite auc metric"),
        ("auc >= 0.75", {"auc": float("nan")}, "candidate has no finite auc metric"),
        ("auc >= 0.75", {"auc": float("inf")}, "candidate has no finite auc metric"),
        ("latency_p99_ms <= 25", {"latency_p99_ms": float("-inf")}, "candidate has no finite"),
    ],
    ids=["floor", "recall", "ceiling", "missing", "nan", "inf", "minus-inf"],
)
def test_a_metric_on_the_wrong_side_of_its_floor_is_refused_with_the_numbers(
    rule: str, metrics: dict[str, float], reason: str
) -> None:
    (got,) = gates.staging(_rules(rule), _candidate(metrics)).reasons

    assert got.startswith(reason)


PRODUCTION_METRICS = {"auc": 0.90, "latency_p99_ms": 20.0}


@pytest.mark.parametrize(
    ("rule", "value", "ok"),
    [
        ("auc >= production.auc - 0.01", 0.895, True),
        ("auc >= production.auc - 0.01", 0.885, False),
        ("auc >= production.auc", 0.905, True),
        ("auc >= production.auc", 0.895, False),
        ("auc >= production.auc + 0.01", 0.915, True),
        ("auc >= production.auc + 0.01", 0.905, False),
    ],
)
def test_a_relative_rule_compares_with_production_plus_its_offset(
    rule: str, value: float, ok: bool
) -> None:
    decision = gates.staging(_rules(rule), _candidate({"auc": value}, PRODUCTION_METRICS))

    assert decision.ok == ok


@pytest.mark.parametrize(("value", "ok"), [(24.0, True), (26.0, False)])
def test_a_relative_ceiling_compares_with_production(value: float, ok: bool) -> None:
    policy = _rules("latency_p99_ms <= production.latency_p99_ms + 5")

    assert gates.staging(policy, _candidate({"latency_p99_ms": value}, PRODUCTION_METRICS)).ok == ok


def test_a_regression_names_the_bound_and_productions_value() -> None:
    policy = _rules("auc >= production.auc - 0.01")

    (reason,) = gates.staging(policy, _candidate({"auc": 0.885}, PRODUCTION_METRICS)).reasons

    assert (
        reason == "auc 0.8850 is not >= production.auc - 0.01 = 0.8900 (production v4 has 0.9000)"
    )


def test_a_relative_rule_may_compare_with_another_production_metric() -> None:
    policy = _rules("auc >= production.auc_floor")

    assert not gates.staging(policy, _candidate({"auc": 0.8}, {"auc_floor": 0.85})).ok
    assert gates.staging(policy, _candidate({"auc": 0.9}, {"auc_floor": 0.85})).ok


def test_the_first_release_skips_relative_rules_but_not_floors() -> None:
    policy = _rules("auc >= 0.75", "auc >= production.auc - 0.01")

    assert gates.staging(policy, _candidate({"auc": 0.76})).ok
    assert gates.staging(policy, _candidate({"auc": 0.70})).reasons == (
        "auc 0.7000 is not >= 0.75",
    )


@pytest.mark.parametrize(
    "production", [{"recall": 0.5}, {"auc": float("nan")}], ids=["absent", "nan"]
)
def test_production_without_the_metric_skips_its_relative_rule(
    production: dict[str, float],
) -> None:
    policy = _rules("auc >= production.auc - 0.01")

    assert gates.staging(policy, _candidate({"auc": 0.5}, production)).ok


def test_a_relative_rule_still_needs_the_candidates_metric() -> None:
    policy = _rules("auc >= production.auc - 0.01")

    assert gates.staging(policy, _candidate({}, PRODUCTION_METRICS)).reasons == (
        "candidate has no finite auc metric",
    )


def test_a_missing_metric_is_one_reason_however_many_rules_name_it() -> None:
    policy = _rules("auc >= 0.75", "auc >= production.auc - 0.01")

    assert gates.staging(policy, _candidate({}, PRODUCTION_METRICS)).reasons == (
        "candidate has no finite auc metric",
    )


def test_every_broken_rule_is_a_reason() -> None:
    policy = _rules("auc >= 0.75", "recall >= 0.2", "latency_p99_ms <= 25", "f1 >= 0.1")
    metrics = {"auc": 0.6, "recall": 0.1, "latency_p99_ms": 30.0, "f1": 0.5}

    reasons = gates.staging(policy, _candidate(metrics))

    assert reasons.reasons == (
        "auc 0.6000 is not >= 0.75",
        "recall 0.1000 is not >= 0.2",
        "latency_p99_ms 30.0000 is not <= 25",
    )


def test_a_policy_without_rules_admits_any_candidate() -> None:
    assert gates.staging(ReleasePolicy(), _candidate({})).ok


@pytest.mark.parametrize("stage", [Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED])
def test_staging_takes_only_a_version_in_none(stage: Stage) -> None:
    decision = gates.staging(_rules("auc >= 0.75"), _candidate({"auc": 0.9}, stage=stage))

    assert decision.reasons == (f"version 7 is in {stage.value}, not None",)


def test_the_staging_decision_keeps_its_facts() -> None:
    facts = _candidate({"auc": 0.9})

    assert gates.staging(_rules("auc >= 0.75"), facts).evidence is facts


# ---------------------------------------------------------------- rollback


def _rollback(**states: str | None) -> RollbackFacts:
    regions = tuple(
        RegionFacts(r, replica=states.get(r.replace("-", "_"), "verified"), health=False)
        for r in REGIONS
    )
    return RollbackFacts(name="fraud", target=3, current=5, regions=regions, policy_version=2)


def test_rollback_to_bytes_verified_everywhere_is_allowed() -> None:
    # Health failed everywhere: rollback is the emergency path and does not look.
    decision = gates.rollback(STRICT, _rollback())

    assert decision.ok
    assert decision.evidence == _rollback()


def test_rollback_names_every_region_without_verified_bytes() -> None:
    facts = _rollback(us_east="stale", ap_south=None)

    assert gates.rollback(STRICT, facts).reasons == (
        "v3 is not verified in us-east (stale), ap-south (no replica): replicate it first",
    )


@pytest.mark.parametrize("state", [None, "pending", "failed", "stale"])
def test_rollback_refuses_a_region_in_any_state_but_verified(state: str | None) -> None:
    decision = gates.rollback(_requiring(), _rollback(eu_west=state))

    assert not decision.ok
    assert "eu-west" in decision.reasons[0]


# ---------------------------------------------------------------- binding


def test_binding_a_compatible_release_is_allowed() -> None:
    decision = gates.binding(FOLLOWER, version=5, has_signature=True)

    assert decision.ok
    assert decision.evidence is FOLLOWER


def test_binding_a_skewed_release_names_it_and_the_features() -> None:
    decision = gates.binding(SKEWED, version=5, has_signature=True)

    assert decision.reasons == (
        "model-code skew with fraud-service@2.0.0: "
        "missing merchant_category (preprocessing fe-2.3 vs fe-2.4)",
    )


@pytest.mark.parametrize("skew", [FOLLOWER, SKEWED], ids=["compatible", "skewed"])
def test_binding_a_version_without_a_signature_is_refused(skew: ReleaseSkew) -> None:
    decision = gates.binding(skew, version=5, has_signature=False)

    assert decision.reasons == (f"v5 has no signature to check {skew.label} against",)


# ---------------------------------------------------------------- forced changes


@pytest.mark.parametrize(
    ("policy", "target", "skipped"),
    [
        (ReleasePolicy(), "Production", ("stage", "replicas", "health", "canary", "signature")),
        (ReleasePolicy(), "champion", ("stage", "replicas", "health", "canary", "signature")),
        (_requiring(Gate.CANARY), "Production", ("stage", "canary")),
        (_requiring(), "Production", ("stage",)),
        (_requiring(Gate.REPLICAS, approvals=2), "Production", ("stage", "replicas", "approval")),
        (_requiring(Gate.APPROVAL, Gate.REPLICAS), "Production", ("stage", "approval", "replicas")),
        (STRICT, "Staging", ("stage", "staging-metrics")),
        (_requiring(), "Staging", ("stage", "staging-metrics")),
    ],
    ids=[
        "default",
        "protected-alias",
        "canary-only",
        "no-gates",
        "approval-count",
        "approval-gate-once",
        "staging",
        "staging-no-gates",
    ],
)
def test_skipped_gates_lists_what_a_forced_change_bypasses(
    policy: ReleasePolicy, target: str, skipped: tuple[str, ...]
) -> None:
    assert gates.skipped_gates(policy, target) == skipped
