"""tasks/release.py through ``.fn()``: each task's one call, against a real registry."""

from __future__ import annotations

import pytest
from task_helpers import MODEL, REGISTRANT

from registry import GateRefused, Settings, Stage
from registry.release.checks import EvaluationEvidence
from registry.release.policy import ReleasePolicy
from registry.store.sql import SqlStore
from tasks.release import (
    approval_status,
    promote,
    read_policy,
    record_approval,
    refuse_promotion,
    stage,
)

STRICT = ReleasePolicy.parse({"staging": ["auc >= 0.95"]})
ONE_APPROVAL = ReleasePolicy.parse({"approvals": {"required": 1, "timeout_s": 60}})


def test_read_policy_gives_the_default_until_one_is_stored(
    settings: Settings, store: SqlStore, registered: int
) -> None:
    assert read_policy.fn(settings, MODEL) == ReleasePolicy()
    store.set_policy(MODEL, STRICT, reason="tighter")
    assert read_policy.fn(settings, MODEL) == STRICT


def test_stage_passes_the_default_policy_and_records_the_move(
    settings: Settings, store: SqlStore, registered: int
) -> None:
    outcome = stage.fn(settings, MODEL, registered, reason="looks fine")
    assert outcome.passed and outcome.stage is Stage.STAGING and outcome.reasons == ()
    assert store.get_version(MODEL, registered).stage is Stage.STAGING
    [move] = [e for e in store.history(MODEL) if e.kind == "stage"]
    assert (move.to_value, move.actor, move.reason) == ("Staging", REGISTRANT, "looks fine")
    assert move.details.origin is None  # not in a flow run


def test_stage_is_refused_by_the_stored_policy_and_the_refusal_recorded(
    settings: Settings, store: SqlStore, registered: int
) -> None:
    store.set_policy(MODEL, STRICT, reason="tighter")
    outcome = stage.fn(settings, MODEL, registered)
    assert not outcome.passed and outcome.stage is Stage.NONE
    assert outcome.reasons == ("auc 0.9120 is not >= 0.95",)
    assert store.get_version(MODEL, registered).stage is Stage.NONE
    [refused] = [e for e in store.history(MODEL) if e.kind == "refused"]
    assert refused.details.gate == "staging" and refused.details.reasons == outcome.reasons


def test_stage_judges_the_evaluation_it_is_given_not_the_registered_metrics(
    settings: Settings, store: SqlStore, registered: int
) -> None:
    store.set_policy(MODEL, STRICT, reason="tighter")
    evaluation = EvaluationEvidence(metrics={"auc": 0.97}, note="holdout")
    outcome = stage.fn(settings, MODEL, registered, evaluation=evaluation)
    assert outcome.passed and outcome.stage is Stage.STAGING
    [check] = store.checks(MODEL, registered, "evaluation")
    assert check.evidence["metrics"] == {"auc": 0.97}


def test_a_version_already_staged_is_left_as_it_is(
    settings: Settings, store: SqlStore, registered: int
) -> None:
    stage.fn(settings, MODEL, registered)
    store.set_policy(MODEL, STRICT, reason="tightened after staging")
    outcome = stage.fn(settings, MODEL, registered)
    assert outcome.passed and outcome.stage is Stage.STAGING  # the promotion gate judges it
    assert [e.to_value for e in store.history(MODEL) if e.kind == "stage"] == ["Staging"]


def test_promote_refuses_an_unreplicated_version_naming_every_region(
    settings: Settings, store: SqlStore, registered: int
) -> None:
    stage.fn(settings, MODEL, registered)
    with pytest.raises(GateRefused) as refused:
        promote.fn(settings, MODEL, registered, reason="ship it")
    [replicas] = [r for r in refused.value.reasons if r.startswith("replica not verified")]
    assert all(region in replicas for region in ("us-east", "eu-west", "ap-south"))
    assert any(r.startswith("no health check") for r in refused.value.reasons)
    assert any(r == "no canary result" for r in refused.value.reasons)
    assert store.get_model(MODEL).production is None
    [event] = [e for e in store.history(MODEL) if e.kind == "refused"]
    assert event.details.gate == "promotion" and event.details.reasons == refused.value.reasons


def test_refuse_promotion_records_the_failed_steps_and_the_gates_view(
    settings: Settings, store: SqlStore, registered: int
) -> None:
    stage.fn(settings, MODEL, registered)
    failed = "replication to ap-south failed: disk full"
    reasons = refuse_promotion.fn(settings, MODEL, registered, [failed])
    assert reasons[0] == failed and len(reasons) > 1  # then what the gate says now
    assert any(r.startswith("replica not verified") for r in reasons)
    [event] = [e for e in store.history(MODEL) if e.kind == "refused"]
    assert list(event.details.reasons) == reasons
    assert store.get_model(MODEL).production is None


def test_approval_status_counts_approvers_other_than_the_registrant(
    settings: Settings, store: SqlStore, registered: int
) -> None:
    store.set_policy(MODEL, ONE_APPROVAL, reason="a person signs off")
    stage.fn(settings, MODEL, registered)
    status = approval_status.fn(settings, MODEL, registered)
    assert (status.needed, status.missing, status.registrant) == (1, 1, REGISTRANT)
    assert status.timeout_s == 60

    own = record_approval.fn(settings, MODEL, registered, REGISTRANT, "my own work")
    assert own is not None and "someone else" in own
    assert approval_status.fn(settings, MODEL, registered).missing == 1

    assert record_approval.fn(settings, MODEL, registered, "alice", "looks good") is None
    assert record_approval.fn(settings, MODEL, registered, "alice", "again") is None
    status = approval_status.fn(settings, MODEL, registered)
    assert status.missing == 0 and status.approvers == ("alice",)
    approvals = [e for e in store.history(MODEL) if e.kind == "approval"]
    assert [(e.actor, e.reason) for e in approvals] == [("alice", "looks good")]


def test_no_approval_is_needed_under_the_default_policy(
    settings: Settings, registered: int
) -> None:
    status = approval_status.fn(settings, MODEL, registered)
    assert status.needed == 0 and status.missing == 0
