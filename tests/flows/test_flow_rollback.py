"""The rollback flow: back to the previous good version, or a named one, with a reason."""

from __future__ import annotations

from pathlib import Path

from flow_helpers import MODEL, flow_run, fraud_policy, history, open_store, production, set_policy

from flows.rollback import rollback_flow
from registry import Stage


def test_rollback_restores_the_previous_version_and_its_event_names_the_run(
    released_home: Path,
) -> None:
    state = rollback_flow(reason="on-call: false positives up", model=MODEL, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert (result.from_version, result.to_version) == (2, 1)
    with open_store(released_home) as store:
        assert store.get_model(MODEL).production == 1
        assert store.get_version(MODEL, 2).stage is Stage.ARCHIVED
    [last] = [e for e in history(released_home) if e.kind == "rollback"]
    assert last.reason == "on-call: false positives up"
    assert last.details.invalidate  # resolvers switch now, not at their next refresh
    # The event names the run that moved Production.
    run = flow_run(state)
    origin = last.details.origin
    assert origin is not None
    assert (origin.flow, origin.run_id, origin.run_name) == ("rollback", str(run.id), run.name)
    assert origin.deployment is None  # called directly, not from a deployment
    assert last.actor == "flow-tests"


def test_rollback_to_a_named_version_and_a_refused_one(released_home: Path) -> None:
    assert rollback_flow(reason="back to v1", model=MODEL, to=1, return_state=True).is_completed()
    again = rollback_flow(reason="nothing left", model=MODEL, return_state=True)
    assert again.is_failed() and again.name == "Refused"
    assert "no earlier Production version" in again.message
    with open_store(released_home) as store:
        assert store.get_model(MODEL).production == 1


def test_rollback_to_a_version_a_region_lacks_is_refused_naming_it(released_home: Path) -> None:
    # The cold-start failure: a region added to the policy never received v1's bytes.
    regions = ["us-east", "eu-west", "ap-south", "sa-east"]
    set_policy(released_home, fraud_policy(regions=regions), reason="test: a fourth region")
    state = rollback_flow(reason="on-call: roll back", model=MODEL, return_state=True)
    assert state.is_failed() and state.name == "Refused", state.message
    assert "sa-east" in state.message and "ap-south" not in state.message
    assert production(released_home) == 2
    [refusal] = [e for e in history(released_home) if e.kind == "refused"]
    assert refusal.details.gate == "rollback" and refusal.version == 1
    assert any("sa-east" in reason for reason in refusal.details.reasons)
    origin = refusal.details.origin
    assert origin is not None and origin.flow == "rollback"
