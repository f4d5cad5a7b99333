"""Two promotions of the same version at once: exactly one flips Production."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from flow_helpers import MODEL, history, production, register_staged

from flows.promote import promote_flow

pytestmark = pytest.mark.slow


def test_two_concurrent_promotions_flip_production_exactly_once(released_home: Path) -> None:
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
    messages = [s.message for s in states]
    assert production(released_home) == candidate
    events = history(released_home)
    flips = [e.version for e in events if e.kind == "stage" and e.to_value == "Production"]
    archived = [e.version for e in events if e.kind == "stage" and e.to_value == "Archived"]
    assert flips == [1, 2, candidate], messages
    assert archived == [1, 2], messages
    # One run promoted it (from v2). The other found it in Production already: it may end
    # Completed (promotion is idempotent) or Refused, but must not claim a promotion.
    assert ["(was v2)" in m for m in messages].count(True) == 1, messages
    assert not any(f"(was v{candidate})" in m for m in messages), messages
    assert (released_home / "registry.db.promote-fraud-detector.lock").exists()
