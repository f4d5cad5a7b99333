"""Pure decisions: stage transitions, rollback targets, who serves after a timeline."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from registry.models import Stage
from registry.release.decision import Decision
from registry.release.transitions import (
    ALLOWED_TRANSITIONS,
    ProductionChange,
    RollbackTarget,
    check_transition,
    choose_rollback_target,
    serving_after,
)

N, S, P, A = Stage.NONE, Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED
LEGAL = {(N, S), (N, A), (S, P), (S, A), (P, A)}  # from the issue, by hand


@pytest.mark.parametrize(
    ("current", "target"), list(itertools.product(Stage, repeat=2)), ids=lambda s: s.value
)
def test_check_transition_allows_exactly_the_legal_moves(current: Stage, target: Stage) -> None:
    decision = check_transition(7, current, target)

    assert decision.ok == ((current, target) in LEGAL)
    assert (target in ALLOWED_TRANSITIONS[current]) == decision.ok


@pytest.mark.parametrize(
    ("current", "target", "hint"),
    [
        (N, P, "allowed: Archived, Staging"),
        (P, S, "allowed: Archived"),
        (A, P, "use rollback to bring it back"),
        (A, S, "use rollback to bring it back"),
    ],
)
def test_a_refused_transition_says_why_and_what_is_allowed(
    current: Stage, target: Stage, hint: str
) -> None:
    decision = check_transition(7, current, target)

    (reason,) = decision.reasons
    assert f"version 7 cannot move from {current.value} to {target.value}" in reason
    assert hint in reason


@pytest.mark.parametrize(("current", "target"), [(N, P), (N, S), (S, P)], ids=str)
def test_a_forced_move_may_skip_staging(current: Stage, target: Stage) -> None:
    assert check_transition(7, current, target, forced=True).ok


@pytest.mark.parametrize(("current", "target"), [(A, P), (P, S), (A, S)], ids=str)
def test_force_does_not_open_other_moves(current: Stage, target: Stage) -> None:
    assert not check_transition(7, current, target, forced=True).ok


def test_decisions_are_frozen() -> None:
    decision = check_transition(1, N, S)

    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.ok = False  # type: ignore[misc]


def _timeline(spec: str) -> list[ProductionChange]:
    """``+3`` v3 enters Production (the previous one leaves), ``-3`` v3 is archived with
    no replacement, ``r2`` a rollback to v2 from whatever served."""
    changes: list[ProductionChange] = []
    serving: int | None = None
    for seq, step in enumerate(spec.split(), start=1):
        version = int(step[1:])
        if step[0] == "+":
            changes.append(ProductionChange(seq, entered=version, left=serving))
            serving = version
        elif step[0] == "-":
            changes.append(ProductionChange(seq, entered=None, left=version))
            serving = None
        else:
            changes.append(ProductionChange(seq, entered=version, left=serving, rollback=True))
            serving = version
    return changes


def _current(spec: str) -> int | None:
    return serving_after(_timeline(spec))


@pytest.mark.parametrize(
    ("spec", "target"),
    [
        ("+1 +2", 1),
        ("+1 +2 +3", 2),
        ("+1 +2 +3 r2", 1),  # v3 was rolled back away from
        ("+1 +2 +3 r1", 2),
        ("+1 +2 r1 +3", 1),  # v2 was rolled back away from
        ("+1 +2 +3 r2 r3", 1),  # v2 and v3 were both rolled back away from
        ("+1 +2 +3 +4 r3 r2", 1),
        ("+1 +2 -2", 2),  # nothing serves: the last that did comes back
        ("+5 +3 +9", 3),  # version numbers need not grow
        ("+1 +2 +1 +2", 1),  # a version may serve more than once
    ],
)
def test_rollback_target_without_a_request(spec: str, target: int) -> None:
    decision = choose_rollback_target(_timeline(spec), _current(spec), None)

    assert decision.ok
    assert decision.evidence == RollbackTarget(target=target, current=_current(spec))


@pytest.mark.parametrize("spec", ["", "+1", "+1 -1 +1", "+1 +2 r1", "+1 +2 +3 r2 r1"], ids=repr)
def test_no_rollback_target(spec: str) -> None:
    decision = choose_rollback_target(_timeline(spec), _current(spec), None)

    assert decision == Decision(
        False,
        ("no earlier Production version to roll back to",),
        RollbackTarget(target=None, current=_current(spec)),
    )


@pytest.mark.parametrize(
    ("spec", "requested"),
    [("+1 +2 +3", 1), ("+1 +2 +3", 2), ("+1 +2 +3 r2", 3), ("+1 +2 -2", 2), ("+1 +2 r1", 2)],
)
def test_requested_rollback_to_a_version_that_served(spec: str, requested: int) -> None:
    decision = choose_rollback_target(_timeline(spec), _current(spec), requested)

    assert decision.ok
    assert decision.evidence == RollbackTarget(target=requested, current=_current(spec))


@pytest.mark.parametrize(
    ("spec", "requested", "why"),
    [
        ("+1 +2", 3, "never served in Production"),
        ("", 1, "never served in Production"),
        ("+1 +2", 2, "already in Production"),
        ("+1 +2 r1", 1, "already in Production"),
    ],
)
def test_requested_rollback_refused(spec: str, requested: int, why: str) -> None:
    decision = choose_rollback_target(_timeline(spec), _current(spec), requested)

    assert not decision.ok
    assert why in decision.reasons[0]
    assert f"version {requested}" in decision.reasons[0]


@pytest.mark.parametrize(
    ("spec", "serving"),
    [
        ("", None),
        ("+1", 1),
        ("+1 +2", 2),
        ("+1 -1", None),
        ("+1 +2 -1", 2),  # archiving a version that no longer serves changes nothing
        ("+1 +2 r1", 1),
        ("+1 -1 r1", 1),
        ("+1 +2 -2 +3", 3),
    ],
    ids=repr,
)
def test_serving_after_a_timeline(spec: str, serving: int | None) -> None:
    assert serving_after(_timeline(spec)) == serving


def test_serving_after_replays_a_prefix() -> None:
    timeline = _timeline("+1 +2 r1 -1 +3")

    assert [serving_after(timeline[:n]) for n in range(6)] == [None, 1, 2, 1, None, 3]
