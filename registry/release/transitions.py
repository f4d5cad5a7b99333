"""Pure decisions: the stage machine and the rollback target.

They take facts and return a frozen ``Decision``; the store records what was decided.
A forced (break-glass) promotion may also go None -> Production: the gates it
skips include the Staging step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from registry.models import Stage
from registry.release.decision import Decision

ALLOWED_TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.NONE: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.ARCHIVED}),
    # Archived is terminal for promote; only rollback brings a version back.
    Stage.ARCHIVED: frozenset(),
}


def check_transition(
    version: int, current: Stage, target: Stage, *, forced: bool = False
) -> Decision[None]:
    if target in ALLOWED_TRANSITIONS[current]:
        return Decision(True, (), None)
    if forced and current is Stage.NONE and target is Stage.PRODUCTION:
        return Decision(True, (), None)
    allowed = sorted(s.value for s in ALLOWED_TRANSITIONS[current])
    hint = f"allowed: {', '.join(allowed)}" if allowed else "use rollback to bring it back"
    return Decision(
        False,
        (f"version {version} cannot move from {current.value} to {target.value} ({hint})",),
        None,
    )


@dataclass(frozen=True)
class RollbackTarget:
    target: int | None
    current: int | None


@dataclass(frozen=True)
class ProductionChange:
    """One change of the Production pointer, read from the event log."""

    seq: int
    entered: int | None  # version that became Production
    left: int | None  # version that stopped being Production
    rollback: bool = False


def choose_rollback_target(
    timeline: Sequence[ProductionChange], current: int | None, requested: int | None
) -> Decision[RollbackTarget]:
    """The version to put back in Production.

    Without ``requested``: the most recent version that served before, skipping any
    version a rollback moved away from (it was rolled back for a reason).
    With ``requested``: that version, if it ever served in Production.
    """
    served = [c.entered for c in timeline if c.entered is not None]
    rolled_away = {c.left for c in timeline if c.rollback and c.left is not None}
    none = RollbackTarget(None, current)
    if requested is not None:
        if requested == current:
            return Decision(False, (f"version {requested} is already in Production",), none)
        if requested not in served:
            reason = f"version {requested} never served in Production; promote it instead"
            return Decision(False, (reason,), none)
        return Decision(True, (), RollbackTarget(requested, current))
    for version in reversed(served):
        if version != current and version not in rolled_away:
            return Decision(True, (), RollbackTarget(version, current))
    return Decision(False, ("no earlier Production version to roll back to",), none)


def serving_after(timeline: Sequence[ProductionChange]) -> int | None:
    """Which version is in Production after replaying ``timeline`` in order."""
    serving: int | None = None
    for change in timeline:
        if change.entered is not None:
            serving = change.entered
        elif change.left is not None and change.left == serving:
            serving = None
    return serving
