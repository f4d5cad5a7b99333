"""The rollback flow: back to the previous good version, or a named one, with a reason."""

from __future__ import annotations

from pathlib import Path

from flow_helpers import MODEL, open_store

from flows.rollback import rollback_flow
from registry import Stage


def test_rollback_restores_the_previous_version(released_home: Path) -> None:
    state = rollback_flow(reason="on-call: false positives up", model=MODEL, return_state=True)
    assert state.is_completed(), state.message
    assert state.result()["from"] == 2 and state.result()["to"] == 1
    with open_store(released_home) as store:
        assert store.get_model(MODEL).production == 1
        assert store.get_version(MODEL, 2).stage is Stage.ARCHIVED
        last = store.history(MODEL)[-1]
    assert last.kind == "rollback" and last.reason == "on-call: false positives up"


def test_rollback_to_a_named_version_and_a_refused_one(released_home: Path) -> None:
    assert rollback_flow(reason="back to v1", model=MODEL, to=1, return_state=True).is_completed()
    again = rollback_flow(reason="nothing left", model=MODEL, return_state=True)
    assert again.is_failed() and again.name == "Refused"
    assert "no earlier Production version" in again.message
    with open_store(released_home) as store:
        assert store.get_model(MODEL).production == 1
