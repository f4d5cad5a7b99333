"""The promotion gate at the Python API door: transition, promote and the production alias.

Whatever the call, a move into Production runs the policy's gates on facts read in
the flip's transaction; a refusal is a ``refused`` event and nothing moves; ``force``
with a reason is the recorded break-glass.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable

import pytest
from release_facts import make_releasable, replicate_everywhere

from registry.errors import Conflict, GateRefused, InvalidInput, RegistryError
from registry.models import (
    EXTERNAL_FORMAT,
    ArtifactRef,
    PointerChange,
    RegisteredModel,
    Stage,
    VersionCreate,
)
from registry.release.policy import ReleasePolicy
from registry.release_models import ReplicaState
from registry.store.sql import SqlStore

from . import workers
from .support import ProcessPool, promote, register_versions, snapshot

Door = Callable[..., PointerChange]

# Every way the Python API can put fraud v1 in Production.
DOORS: dict[str, Door] = {
    "transition": lambda s, **kw: s.transition("fraud", 1, Stage.PRODUCTION, **kw),
    "promote": lambda s, **kw: s.promote("fraud", 1, **kw),
    "production-alias": lambda s, **kw: s.set_aliases("fraud", {"production": 1}, **kw),
}
doors = pytest.mark.parametrize("door", DOORS.values(), ids=DOORS.keys())
UNREPLICATED_REASONS = (
    "replica not verified in us-east (no replica), eu-west (no replica), ap-south (no replica)",
    "no health check in us-east, eu-west, ap-south",
    "no canary result",
)
DEFAULT_SKIPPED = ("stage", "replicas", "health", "canary", "signature")


@pytest.fixture
def staged(store: SqlStore) -> SqlStore:
    """fraud v1 in Staging, with nothing recorded for the gates."""
    register_versions(store, "fraud", 1)
    store.transition("fraud", 1, Stage.STAGING)
    return store


def _refusal(store: SqlStore, door: Door, **kwargs: object) -> GateRefused:
    with pytest.raises(GateRefused) as raised:
        door(store, **kwargs)
    return raised.value


@doors
def test_an_unreplicated_version_is_refused_listing_every_unmet_gate(
    staged: SqlStore, door: Door
) -> None:
    refused = _refusal(staged, door, reason="ship it")

    assert refused.reasons == UNREPLICATED_REASONS
    assert "\n" not in str(refused)
    assert all(reason in str(refused) for reason in UNREPLICATED_REASONS)


@doors
def test_a_refusal_is_a_refused_event_with_its_reasons(staged: SqlStore, door: Door) -> None:
    refused = _refusal(staged, door, reason="ship it")

    event = staged.history("fraud")[-1]
    assert (event.kind, event.version, event.subject, event.actor, event.reason) == (
        "refused",
        1,
        "Production",
        "tester",
        "ship it",
    )
    assert event.details.gate == "promotion"
    assert event.details.reasons == refused.reasons
    assert staged.events()[-1] == event


@doors
def test_a_refusal_moves_nothing(staged: SqlStore, door: Door) -> None:
    before = snapshot(staged)

    _refusal(staged, door)

    after = snapshot(staged)
    assert after.versions == before.versions
    assert _pointers(after.models) == _pointers(before.models)  # generation included
    assert [e.kind for e in after.events[len(before.events) :]] == ["refused"]
    assert after.models[0].last_event == after.events[-1]


def _pointers(models: list[RegisteredModel]) -> list[RegisteredModel]:
    return [m.model_copy(update={"last_event": None}) for m in models]


@doors
@pytest.mark.parametrize("reason", [None, "", "   "], ids=repr)
def test_force_without_a_reason_is_invalid_input(
    staged: SqlStore, door: Door, reason: str | None
) -> None:
    before = snapshot(staged)

    with pytest.raises(InvalidInput, match="needs a reason"):
        door(staged, force=True, reason=reason)

    assert snapshot(staged) == before


@doors
def test_force_with_a_reason_moves_it_and_says_what_it_skipped(
    staged: SqlStore, door: Door
) -> None:
    change = door(staged, force=True, reason="INC-42: the canary host is down")

    assert staged.get_model("fraud").production == 1
    event = change.events[-1]
    assert (event.kind, event.to_value, event.reason) == (
        "stage",
        "Production",
        "INC-42: the canary host is down",
    )
    assert event.details.forced
    assert event.details.skipped == DEFAULT_SKIPPED
    assert event.details.reasons == UNREPLICATED_REASONS
    assert staged.history("fraud")[-1] == event


def test_force_promotes_straight_from_none(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)

    store.promote("fraud", 1, force=True, reason="hotfix")

    assert store.get_version("fraud", 1).stage is Stage.PRODUCTION


def test_a_forced_move_of_a_releasable_version_is_not_marked_forced(staged: SqlStore) -> None:
    make_releasable(staged, "fraud", 1)

    change = staged.promote("fraud", 1, force=True, reason="belt and braces")

    assert change.events[-1].details.empty


@doors
def test_a_releasable_version_passes_every_door(staged: SqlStore, door: Door) -> None:
    make_releasable(staged, "fraud", 1)

    change = door(staged, reason="all green")

    assert staged.get_model("fraud").production == 1
    assert [(e.kind, e.from_value, e.to_value) for e in change.events] == [
        ("stage", "Staging", "Production")
    ]
    assert change.events[-1].details.empty


def test_the_production_alias_refuses_exactly_as_promote_does(staged: SqlStore) -> None:
    by_alias = _refusal(staged, DOORS["production-alias"])
    by_promote = _refusal(staged, DOORS["promote"])

    assert by_alias.reasons == by_promote.reasons
    assert [e.details.gate for e in staged.history("fraud")[-2:]] == ["promotion", "promotion"]


@pytest.mark.parametrize(
    "moves", [{"production": None}, {"production": 1, "stable": 1}], ids=["delete", "with-another"]
)
def test_the_production_alias_is_set_alone_and_to_a_version(
    staged: SqlStore, moves: dict[str, int | None]
) -> None:
    before = snapshot(staged)

    with pytest.raises(InvalidInput, match="production alias is the Production stage"):
        staged.set_aliases("fraud", moves, force=True, reason="r")

    assert snapshot(staged) == before


def test_a_version_registered_but_not_staged_is_refused(store: SqlStore) -> None:
    register_versions(store, "fraud", 1)

    with pytest.raises(Conflict, match="cannot move from None to Production"):
        store.promote("fraud", 1)


@pytest.mark.parametrize("missing", ["us-east", "ap-south"])
def test_one_missing_region_is_named(staged: SqlStore, missing: str) -> None:
    make_releasable(staged, "fraud", 1)
    staged.record_replica("fraud", 1, missing, ReplicaState.FAILED, error="disk full")

    refused = _refusal(staged, DOORS["promote"])

    assert refused.reasons == (f"replica not verified in {missing} (failed: disk full)",)


def test_a_verified_replica_of_other_bytes_is_stale(staged: SqlStore) -> None:
    make_releasable(staged, "fraud", 1)
    staged.record_replica(
        "fraud", 1, "eu-west", ReplicaState.VERIFIED, uri="file:///x", sha256="0" * 64, size=1
    )

    refused = _refusal(staged, DOORS["promote"])

    assert refused.reasons == ("replica not verified in eu-west (stale)",)


def test_a_failed_health_check_is_refused_naming_the_region(staged: SqlStore) -> None:
    make_releasable(staged, "fraud", 1)
    staged.record_check(
        "fraud", 1, "health", region="eu-west", passed=False, evidence={"error": "load failed"}
    )

    refused = _refusal(staged, DOORS["promote"])

    assert refused.reasons == ("health check failed in eu-west: load failed",)


@pytest.mark.parametrize(("last", "ok"), [(True, True), (False, False)], ids=["pass", "fail"])
def test_the_latest_health_check_of_a_region_decides(
    staged: SqlStore, last: bool, ok: bool
) -> None:
    make_releasable(staged, "fraud", 1)
    staged.record_check("fraud", 1, "health", region="us-east", passed=not last, evidence={})
    staged.record_check("fraud", 1, "health", region="us-east", passed=last, evidence={})

    if ok:
        staged.promote("fraud", 1)
        assert staged.get_model("fraud").production == 1
    else:
        assert _refusal(staged, DOORS["promote"]).reasons == (
            "health check failed in us-east: failed",
        )


def test_a_failed_canary_is_refused(staged: SqlStore) -> None:
    make_releasable(staged, "fraud", 1, canary=False)
    staged.record_check(
        "fraud",
        1,
        "canary",
        passed=False,
        evidence={"decision": "inferior", "baseline_version": None},
    )

    assert _refusal(staged, DOORS["promote"]).reasons == ("canary failed: inferior",)


def test_a_canary_against_an_older_production_is_refused(store: SqlStore) -> None:
    register_versions(store, "fraud", 3)
    promote(store, "fraud", 1)
    for version in (2, 3):
        store.transition("fraud", version, Stage.STAGING)
        make_releasable(store, "fraud", version)  # both canaried against v1
    store.promote("fraud", 3)

    with pytest.raises(GateRefused) as raised:
        store.promote("fraud", 2)

    assert raised.value.reasons == (
        "production changed since the canary (compared with v1, production is v3): "
        "re-run the canary",
    )
    assert store.get_model("fraud").production == 3


def test_the_gates_are_those_the_policy_requires(staged: SqlStore) -> None:
    staged.set_policy(
        "fraud",
        ReleasePolicy.parse({"required": ["replicas"], "regions": ["eu-west"]}),
        reason="one region, no canary yet",
    )

    assert _refusal(staged, DOORS["promote"]).reasons == (
        "replica not verified in eu-west (no replica)",
    )
    replicate_everywhere(staged, "fraud", 1, regions=["eu-west"])
    staged.promote("fraud", 1)
    assert staged.get_model("fraud").production == 1


def test_a_forced_move_skips_the_gates_of_the_policy_in_force(staged: SqlStore) -> None:
    staged.set_policy("fraud", ReleasePolicy.parse({"required": ["replicas"]}), reason="lean")

    change = staged.promote("fraud", 1, force=True, reason="hotfix")

    assert change.events[-1].details.skipped == ("stage", "replicas")


# ---------------------------------------------------------------- racing promoters


@pytest.fixture
def two_candidates(store: SqlStore) -> SqlStore:
    """fraud v1 serves; v2 and v3 are staged, each with every gate passing against v1."""
    register_versions(store, "fraud", 3)
    promote(store, "fraud", 1)
    for version in (2, 3):
        store.transition("fraud", version, Stage.STAGING)
        make_releasable(store, "fraud", version)
    return store


@pytest.mark.parametrize("compare", [True, False], ids=["with-generation", "without"])
def test_two_processes_racing_to_promote_exactly_one_wins(
    two_candidates: SqlStore, store_url: str, processes: ProcessPool, compare: bool
) -> None:
    model = two_candidates.get_model("fraud")
    expected = model.generation if compare else None
    last_seq = two_candidates.events()[-1].seq

    reports = processes.run_together(
        workers.promote_once, [(store_url, "fraud", v, expected) for v in (2, 3)]
    )

    outcomes = sorted(kind for kind, _ in reports)
    # A loser that compared generations sees a stale one; one that did not finds the
    # winner in Production, so its canary (against v1) no longer holds.
    assert outcomes == ["conflict", "ok"] if compare else ["ok", "refused"], reports
    (winner,) = [v for v, (kind, _) in zip((2, 3), reports, strict=True) if kind == "ok"]
    after = two_candidates.get_model("fraud")
    assert (after.production, after.generation) == (winner, model.generation + 1)
    assert [
        v.version for v in two_candidates.list_versions("fraud") if v.stage is Stage.PRODUCTION
    ] == [winner]
    logged = [(e.kind, e.version) for e in two_candidates.events(since=last_seq)]
    loser = 5 - winner
    assert logged == [("stage", 1), ("stage", winner)] + ([] if compare else [("refused", loser)])


# ---------------------------------------------------------------- what a gate reads


def test_every_refusal_reason_is_one_line(staged: SqlStore) -> None:
    """A health worker's error may be a traceback; the refusal stays one line per reason."""
    make_releasable(staged, "fraud", 1)
    staged.record_check(
        "fraud",
        1,
        "health",
        region="eu-west",
        passed=False,
        evidence={"error": "Traceback (most recent call last):\n  ...\nOSError: no such file"},
    )

    refused = _refusal(staged, DOORS["promote"])

    assert len(refused.reasons) == 1
    assert "\n" not in refused.reasons[0]
    assert "\n" not in str(refused)
    assert "OSError: no such file" in refused.reasons[0]


@pytest.mark.parametrize(
    ("kind", "region", "evidence", "stage"),
    [
        ("evaluation", None, {"note": "written by hand, no metrics"}, Stage.STAGING),
        ("evaluation", None, {"metrics": {"auc": "high"}}, Stage.STAGING),
        ("health", "us-east", {"error": 3}, Stage.PRODUCTION),
        ("canary", None, {"decision": "non-inferior", "baseline_version": "v1"}, Stage.PRODUCTION),
    ],
    ids=["evaluation-without-metrics", "evaluation-text-metric", "health-error", "canary-baseline"],
)
def test_evidence_a_gate_cannot_read_is_a_registry_error(
    store: SqlStore, kind: str, region: str | None, evidence: dict[str, object], stage: Stage
) -> None:
    """``record_check`` takes any JSON object; the gate reading it back must not fail
    with a third-party (pydantic) error, which no caller catches."""
    register_versions(store, "fraud", 1)
    if stage is Stage.PRODUCTION:
        store.transition("fraud", 1, Stage.STAGING)
        make_releasable(store, "fraud", 1)
    store.record_check("fraud", 1, kind, region=region, passed=True, evidence=evidence)

    with contextlib.suppress(RegistryError):  # refused or rejected in the registry's terms
        store.transition("fraud", 1, stage)


# ---------------------------------------------------------------- unverified versions


def _external(store: SqlStore) -> None:
    """fraud v1: an external reference (the registry never read the bytes), in Staging."""
    reference = b'{"external":"runs:/abc123/model"}'
    digest = hashlib.sha256(reference).hexdigest()
    ref = ArtifactRef(
        uri=f"file:///a/{digest}", sha256=digest, size=len(reference), format=EXTERNAL_FORMAT
    )
    store.register("fraud", ref, VersionCreate())
    store.transition("fraud", 1, Stage.STAGING)


@doors
def test_an_unverified_version_is_refused_even_by_a_policy_that_requires_no_gate(
    store: SqlStore, door: Door
) -> None:
    _external(store)
    store.set_policy("fraud", ReleasePolicy(required=()), reason="no gates")
    before = snapshot(store)
    refused = _refusal(store, door, reason="ship it")
    assert len(refused.reasons) == 1
    assert "v1 is an unverified external reference" in refused.reasons[0]
    assert store.get_model("fraud").production is None
    after = snapshot(store)
    assert [e.kind for e in after.events[len(before.events) :]] == ["refused"]


@doors
def test_a_policy_that_allows_unverified_versions_lets_one_through(
    store: SqlStore, door: Door
) -> None:
    _external(store)
    policy = ReleasePolicy(required=(), allow_unverified=True)
    assert ReleasePolicy.parse(policy.to_document()) == policy
    store.set_policy("fraud", policy, reason="we trust the tracking server")
    door(store, reason="ship it")
    assert store.get_model("fraud").production == 1
