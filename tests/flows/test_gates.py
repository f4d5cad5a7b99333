"""The promotion decision as a pure function of the facts read from the store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from registry import Conflict
from registry.gates import PromotionFacts, RegionHealth, decide, promotion_lock

REGIONS = ("ap-south", "eu-west", "us-east")


def facts(**changes: object) -> PromotionFacts:
    ready = PromotionFacts(
        name="fraud-detector",
        version=3,
        stage="Staging",
        generation=7,
        production=2,
        regions=REGIONS,
        not_ready=(),
        health=tuple(RegionHealth(r, True) for r in REGIONS),
        canary_passed=True,
        canary_decision="non-inferior",
        canary_baseline=2,
        schema_source="signature of production v2",
    )
    return replace(ready, **changes)  # type: ignore[arg-type]


def test_every_gate_passing_promotes() -> None:
    decision = decide(facts())
    assert decision.ok and decision.reasons == ()
    assert decision.evidence["production"] == 2 and tuple(decision.evidence["regions"]) == REGIONS


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"stage": "None"}, "version 3 is in None, not Staging"),
        ({"stage": "Production"}, "version 3 is in Production, not Staging"),
        ({"regions": ()}, "no regions configured"),
        ({"not_ready": ("ap-south",)}, "replica not verified in ap-south"),
        (
            {"health": (RegionHealth("ap-south", False, "predictions differ"),)},
            "health check failed in ap-south: predictions differ",
        ),
        ({"health": (RegionHealth("eu-west", None),)}, "no health check in eu-west"),
        ({"canary_passed": None}, "no canary result"),
        ({"canary_passed": False, "canary_decision": "inferior"}, "canary failed: inferior"),
        (
            {"production": 4},
            "production changed since the canary (compared with v2, production is v4)",
        ),
        (
            {"signature_problems": ("feature 'amount' retyped float64 -> int64",)},
            "signature incompatible with the serving schema",
        ),
    ],
)
def test_each_failing_gate_refuses_with_its_reason(changes: dict[str, object], reason: str) -> None:
    decision = decide(facts(**changes))
    assert not decision.ok
    assert any(r.startswith(reason) for r in decision.reasons), decision.reasons


def test_all_reasons_are_reported_not_just_the_first() -> None:
    decision = decide(facts(not_ready=("us-east",), canary_passed=False, stage="None"))
    assert len(decision.reasons) == 3


def test_a_first_release_has_no_baseline_to_compare() -> None:
    assert decide(facts(production=None, canary_baseline=None, schema_source=None)).ok


def hold_and_try(url: str) -> None:
    """While one holder has the lock, a second one times out; afterwards it gets it."""
    with promotion_lock(url, "fraud-detector"), ThreadPoolExecutor(max_workers=1) as pool:
        second = pool.submit(_take, url, "fraud-detector", 0.3)
        with pytest.raises(Conflict, match="held its lock"):
            second.result()
        assert pool.submit(_take, url, "other-model", 0.3).result() is True
    assert _take(url, "fraud-detector", 0.3) is True


def _take(url: str, name: str, timeout: float) -> bool:
    with promotion_lock(url, name, timeout=timeout):
        return True


def test_the_promotion_lock_is_one_at_a_time_per_model_on_sqlite(tmp_path: Path) -> None:
    hold_and_try(f"sqlite:///{tmp_path}/registry.db")


@pytest.mark.postgres
def test_the_promotion_lock_is_one_at_a_time_per_model_on_postgres(
    postgres_server_url: str,
) -> None:
    hold_and_try(postgres_server_url)
