"""The release gates: pure decisions, ``(policy, facts) -> Decision``.

The SQL store reads the facts inside the transaction that would flip the pointer
(under the model's row lock, at the generation it compares-and-swaps), calls one
of these, and either flips or records the refusal as an event. Nothing here
touches a database, a file or the clock, so every rule is tested exhaustively.

- ``staging``: None -> Staging, the policy's metric rules (absolute floors and
  no-regression against Production).
- ``promotion``: Staging -> Production, or a protected alias move: the policy's
  required gates (replicas, health, canary, signature against every app release
  that follows the pointer, approvals).
- ``rollback``: the emergency path: no canary or health, but the target's bytes
  must be verified in every region of the policy.
- ``binding``: an app release may use a version only if its signature matches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from registry.models import Stage
from registry.release.decision import Decision
from registry.release.policy import Gate, MetricRule, ReleasePolicy

PRODUCTION = Stage.PRODUCTION.value


# ---------------------------------------------------------------- facts


@dataclass(frozen=True)
class RegionFacts:
    """One region of the policy: the version's replica there, and its latest health check."""

    region: str
    replica: str | None = None  # verified (with the registered sha256 and size), pending, failed
    replica_error: str | None = None
    health: bool | None = None  # None: no health check recorded
    health_error: str | None = None

    @property
    def verified(self) -> bool:
        return self.replica == "verified"

    def replica_problem(self) -> str:
        if self.replica is None:
            return f"{self.region} (no replica)"
        if self.replica_error:
            return f"{self.region} ({self.replica}: {self.replica_error})"
        return f"{self.region} ({self.replica})"


@dataclass(frozen=True)
class CanaryFacts:
    passed: bool
    decision: str
    baseline_version: int | None  # the Production version the canary compared with


@dataclass(frozen=True)
class ReleaseSkew:
    """An app release that follows the pointer being moved, and what differs."""

    app: str
    release: str
    follow: str
    problems: tuple[str, ...] = ()  # empty: compatible
    summary: str = ""

    @property
    def label(self) -> str:
        return f"{self.app}@{self.release}"


@dataclass(frozen=True)
class PromotionFacts:
    name: str
    version: int
    target: str  # "Production" or a protected alias
    stage: Stage
    generation: int
    production: int | None
    registrant: str
    has_signature: bool
    regions: tuple[RegionFacts, ...]
    canary: CanaryFacts | None
    releases: tuple[ReleaseSkew, ...]
    approvers: tuple[str, ...]  # distinct people, the registrant left out
    policy_version: int
    unverified: bool = False  # an external reference: the registry never read its bytes
    # Why it may not serve: erasure requests whose subject is in its training data
    # (``registry.store.sql.subject_index``). A rule of law, not of the policy.
    erasures: tuple[str, ...] = ()


@dataclass(frozen=True)
class StagingFacts:
    version: int
    stage: Stage
    metrics: Mapping[str, float]
    metrics_source: str  # "evaluation check" or "registered metrics"
    production: int | None
    production_metrics: Mapping[str, float] | None
    policy_version: int
    unreadable: tuple[str, ...] = ()  # recorded evidence the gate could not read


@dataclass(frozen=True)
class RollbackFacts:
    name: str
    target: int
    current: int | None
    regions: tuple[RegionFacts, ...]
    policy_version: int
    has_signature: bool = True
    releases: tuple[ReleaseSkew, ...] = ()  # app releases following Production
    erasures: tuple[str, ...] = ()  # as PromotionFacts.erasures, for the target


# ---------------------------------------------------------------- decisions


def staging(policy: ReleasePolicy, facts: StagingFacts) -> Decision[StagingFacts]:
    """None -> Staging: every metric rule of the policy holds."""
    reasons: list[str] = list(facts.unreadable)
    if facts.stage is not Stage.NONE:
        reasons.append(f"version {facts.version} is in {facts.stage.value}, not None")
    for rule in policy.staging:
        problem = _rule_problem(rule, facts)
        if problem is not None and problem not in reasons:  # a missing metric once
            reasons.append(problem)
    return Decision.of(reasons, facts)


def _rule_problem(rule: MetricRule, facts: StagingFacts) -> str | None:
    value = facts.metrics.get(rule.metric)
    if value is None or not math.isfinite(value):
        return f"candidate has no finite {rule.metric} metric"
    if rule.baseline is None:
        assert rule.threshold is not None
        bound, shown = rule.threshold, f"{rule.threshold:g}"
    else:
        known = facts.production_metrics or {}
        base = known.get(rule.baseline)
        if facts.production is None or base is None or not math.isfinite(base):
            return None  # a first release, or Production never measured it: nothing to regress from
        bound = base + rule.offset
        rhs = str(rule).split(f" {rule.op} ", 1)[1]
        shown = f"{rhs} = {bound:.4f} (production v{facts.production} has {base:.4f})"
    if (rule.op == ">=" and value < bound) or (rule.op == "<=" and value > bound):
        return f"{rule.metric} {value:.4f} is not {rule.op} {shown}"
    return None


def promotion(policy: ReleasePolicy, facts: PromotionFacts) -> Decision[PromotionFacts]:
    """Staging -> Production, or a protected alias: every gate the policy requires."""
    reasons: list[str] = []
    v = f"v{facts.version}"
    if facts.target == PRODUCTION:
        if facts.stage is not Stage.STAGING:
            reasons.append(f"{v} is in {facts.stage.value}, not Staging")
    elif facts.stage not in (Stage.STAGING, Stage.PRODUCTION) and _gated(policy):
        # A policy that requires no gate lets protected aliases move as MLflow's do.
        reasons.append(
            f"{v} is in {facts.stage.value}: a protected alias takes a Staging or "
            "Production version"
        )
    if facts.unverified and not policy.allow_unverified:
        reasons.append(
            f"{v} is an unverified external reference (the registry never read its bytes); "
            "the policy's allow_unverified would let it through"
        )
    if Gate.REPLICAS in policy.required:
        missing = [r.replica_problem() for r in facts.regions if not r.verified]
        if missing:
            reasons.append(f"replica not verified in {', '.join(missing)}")
    if Gate.HEALTH in policy.required:
        unchecked = [r.region for r in facts.regions if r.health is None]
        if unchecked:
            reasons.append(f"no health check in {', '.join(unchecked)}")
        for region in facts.regions:
            if region.health is False:
                reasons.append(
                    f"health check failed in {region.region}: {region.health_error or 'failed'}"
                )
    if Gate.CANARY in policy.required:
        reasons += _canary_problems(facts)
    if Gate.SIGNATURE in policy.required:
        reasons += _skew_problems(facts)
    if policy.requires(Gate.APPROVAL):
        needed = max(policy.approvals.required, 1)
        if len(facts.approvers) < needed:
            have = ", ".join(facts.approvers) or "none"
            reasons.append(
                f"needs {needed} approval(s) from someone other than the registrant "
                f"({facts.registrant}); has {len(facts.approvers)} ({have})"
            )
    reasons += facts.erasures
    return Decision.of(reasons, facts)


def _gated(policy: ReleasePolicy) -> bool:
    return bool(policy.required) or policy.approvals.required > 0


def _canary_problems(facts: PromotionFacts) -> list[str]:
    canary = facts.canary
    if canary is None:
        return ["no canary result"]
    if not canary.passed:
        return [f"canary failed: {canary.decision or 'regression'}"]
    # The candidate already in Production was compared with the version before it.
    if facts.production not in (canary.baseline_version, facts.version):
        return [
            f"production changed since the canary (compared with {_v(canary.baseline_version)}, "
            f"production is {_v(facts.production)}): re-run the canary"
        ]
    return []


def _skew_problems(facts: PromotionFacts) -> list[str]:
    return skew_problems(facts.version, facts.has_signature, facts.releases)


def skew_problems(
    version: int, has_signature: bool, releases: tuple[ReleaseSkew, ...]
) -> list[str]:
    """One reason per app release that would be handed a model it cannot feed."""
    reasons: list[str] = []
    for skew in releases:
        if not has_signature:
            reasons.append(f"v{version} has no signature, but {skew.label} follows {skew.follow}")
        elif skew.problems:
            reasons.append(
                f"model-code skew with {skew.label} (follows {skew.follow}): {skew.summary}"
            )
    return reasons


def followers(
    version: int, has_signature: bool, releases: tuple[ReleaseSkew, ...]
) -> Decision[tuple[ReleaseSkew, ...]]:
    """An unprotected alias may move only to a version every release following it can feed."""
    return Decision.of(skew_problems(version, has_signature, releases), releases)


def rollback(policy: ReleasePolicy, facts: RollbackFacts) -> Decision[RollbackFacts]:
    """The target's bytes are verified in every region (the cold-start failure otherwise),
    and, where the policy checks signatures, every app release following Production can
    feed it (the code that runs now is what it will serve)."""
    missing = [r.replica_problem() for r in facts.regions if not r.verified]
    reasons = (
        [f"v{facts.target} is not verified in {', '.join(missing)}: replicate it first"]
        if missing
        else []
    )
    if Gate.SIGNATURE in policy.required:
        reasons += skew_problems(facts.target, facts.has_signature, facts.releases)
    reasons += facts.erasures
    return Decision.of(reasons, facts)


def binding(skew: ReleaseSkew, *, version: int, has_signature: bool) -> Decision[ReleaseSkew]:
    """An app release may use ``version`` only if the model takes what its code sends."""
    if not has_signature:
        return Decision.of([f"v{version} has no signature to check {skew.label} against"], skew)
    if skew.problems:
        return Decision.of([f"model-code skew with {skew.label}: {skew.summary}"], skew)
    return Decision.of([], skew)


def skipped_gates(policy: ReleasePolicy, target: str) -> tuple[str, ...]:
    """What a forced change to ``target`` skips: the stage rule and every required gate."""
    gates = ["stage", *(g.value for g in policy.required)]
    if policy.requires(Gate.APPROVAL) and Gate.APPROVAL.value not in gates:
        gates.append(Gate.APPROVAL.value)
    if target == Stage.STAGING.value:
        gates = ["stage", "staging-metrics"]
    return tuple(gates)


def _v(version: int | None) -> str:
    return "none" if version is None else f"v{version}"
