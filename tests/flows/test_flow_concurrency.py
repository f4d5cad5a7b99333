"""Two promotions of the same model at once: exactly one wins, the other is refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flow_helpers import MODEL, open_store, register_staged

from flows.promote import promote_flow

pytestmark = pytest.mark.slow


def test_two_concurrent_promotions_exactly_one_wins(released_home: Path) -> None:
    candidate = register_staged(released_home, artifact_of=1, golden_of=1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        states = list(
            pool.map(
                lambda reason: promote_flow(
                    version=candidate, model=MODEL, reason=reason, return_state=True
                ),
                ["promoter A", "promoter B"],
            )
        )
    assert sorted(s.name for s in states) == ["Completed", "Refused"], [s.message for s in states]
    with open_store(released_home) as store:
        assert store.get_model(MODEL).production == candidate
        checks = store.checks(MODEL, candidate, "promotion")
        flips = [e for e in store.history(MODEL) if e.to_value == "Production"]
    assert [c.passed for c in checks].count(True) == 1
    assert [e.version for e in flips] == [1, 2, candidate]
    [refusal] = [c for c in checks if not c.passed]
    assert refusal.evidence["reasons"]
    assert (released_home / "registry.db.promote-fraud-detector.lock").exists()
