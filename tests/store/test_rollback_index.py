"""Rollback reads two indexed version rows, not the event log: both must agree.

``rollback_candidates`` builds the slice of the Production timeline that
``choose_rollback_target`` needs from per-version columns (generation of the
latest entry into Production, rolled away from or not). The event log is the
record of truth; these tests replay random histories and check that the policy
decides the same from the full event-log timeline and from the indexed slice.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.errors import GateRefused
from registry.models import Stage
from registry.release.transitions import choose_rollback_target
from registry.store.sql import SqlStore
from registry.store.sql.common import require_model
from registry.store.sql.pointers import production_timeline, rollback_candidates

from .support import promote, register_versions

# A step: promote a new version, archive what serves, roll back, or roll back to
# the k-th version registered so far (k wraps around).
STEPS = st.lists(
    st.one_of(
        st.just(("promote", 0)),
        st.just(("archive", 0)),
        st.just(("rollback", 0)),
        st.tuples(st.just("rollback_to"), st.integers(min_value=0, max_value=30)),
    ),
    min_size=1,
    max_size=14,
)


def _decisions(store: SqlStore, versions: int) -> list[tuple[bool, object]]:
    """The policy's answer for ``rollback`` and for ``rollback --to`` each version,
    from the full timeline and from the indexed candidates."""
    out: list[tuple[bool, object]] = []
    with store.db.read() as conn:
        model_id = require_model(conn, "fraud")
        full = production_timeline(conn, model_id)
        current = store.get_model("fraud").production
        for requested in [None, *range(1, versions + 1)]:
            expected = choose_rollback_target(full, current, requested)
            indexed = choose_rollback_target(
                rollback_candidates(conn, model_id, requested), current, requested
            )
            out.append(
                (
                    expected.ok == indexed.ok and expected.evidence == indexed.evidence,
                    (requested, expected, indexed),
                )
            )
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_indexed_rollback_choice_matches_the_event_log(steps: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(f"sqlite:///{Path(tmp) / 'r.db'}", actor="test")
        try:
            registered = 0
            for kind, k in steps:
                serving = store.get_model("fraud").production if registered else None
                try:
                    if kind == "promote":
                        registered += 1
                        register_versions(store, "fraud", 1)
                        promote(store, "fraud", registered)
                    elif kind == "archive" and serving is not None:
                        store.transition("fraud", serving, Stage.ARCHIVED)
                    elif kind == "rollback" and registered:
                        store.rollback("fraud", reason="t")
                    elif kind == "rollback_to" and registered:
                        store.rollback("fraud", to=1 + k % registered, reason="t")
                except GateRefused:
                    pass  # a refused rollback changes nothing; the comparison still runs
                if registered:
                    for agree, detail in _decisions(store, registered):
                        assert agree, detail
        finally:
            store.close()
