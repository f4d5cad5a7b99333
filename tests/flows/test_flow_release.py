"""The retrain and promote flows end to end: real data, models, GX, replicas, gates."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytest
from flow_helpers import (
    MODEL,
    ROWS,
    THIRD,
    flow_run,
    history,
    open_store,
    production,
    refusal_reasons,
    refusals,
    register_staged,
    use_home,
)

from flows.promote import promote_flow
from flows.retrain import retrain_flow
from registry import GateRefused, Stage

pytestmark = pytest.mark.slow


def test_two_retrains_release_v1_then_v2(released_template: dict[str, Any]) -> None:
    home = released_template["home"]
    first, second = released_template["states"]
    assert first.is_completed() and "v1 promoted to Production (first release)" in first.message
    assert second.is_completed() and "v2 promoted to Production (was v1)" in second.message
    with open_store(home) as store:
        assert store.get_model(MODEL).production == 2
        assert store.get_version(MODEL, 1).stage is Stage.ARCHIVED
        v2 = store.get_version(MODEL, 2)
        replicas = store.replicas(MODEL, 2)
        health = store.latest_checks(MODEL, 2, "health")
        canary = store.latest_checks(MODEL, 2, "canary")[None]
        evaluation = store.latest_checks(MODEL, 2, "evaluation")[None]
        events = store.history(MODEL)
    assert [(r.region, r.state.value) for r in replicas] == [
        ("ap-south", "verified"),
        ("eu-west", "verified"),
        ("us-east", "verified"),
    ]
    assert all(r.sha256 == v2.artifact.sha256 for r in replicas)
    assert sorted(health) == ["ap-south", "eu-west", "us-east"]
    assert all(c.passed for c in health.values())
    assert canary.passed and canary.evidence["baseline_version"] == 1
    assert evaluation.evidence["production_version"] == 1
    assert v2.artifact.format == "skops" and v2.metrics["auc"] > 0.75
    assert v2.lineage.datasets[0].version == "2026-11-01"
    assert v2.signature is not None and v2.signature.preprocessing_version == "fe-1"
    assert v2.idempotency_key == f"retrain:{MODEL}:{v2.artifact.sha256}"
    # Through the gates, none forced, nothing refused; each move says which run made it.
    moves = [(e.version, e.to_value) for e in events if e.kind == "stage"]
    assert sorted(moves) == [
        (1, "Archived"),
        (1, "Production"),
        (1, "Staging"),
        (2, "Production"),
        (2, "Staging"),
    ]
    assert not any(e.details.forced for e in events)
    assert [e for e in events if e.kind == "refused"] == []
    promoted_v2 = next(e for e in events if e.version == 2 and e.to_value == "Production")
    origin = promoted_v2.details.origin
    assert origin is not None and origin.flow == "retrain"
    assert origin.run_id == str(second.state_details.flow_run_id)


def test_each_retrain_records_its_datasets_subjects_and_lineage_finds_them(
    released_template: dict[str, Any],
) -> None:
    import pandas as pd
    from click.testing import CliRunner

    from registry.cli.main import cli

    home = released_template["home"]
    frame = pd.read_parquet(home / "data" / "transactions-2026-11-01.parquet")
    customer = str(frame["customer_id"].iloc[0])
    with open_store(home) as store:
        manifest = store.subject_manifest("transactions", "2026-11-01")
        v2 = store.get_version(MODEL, 2)
    assert manifest.subjects == frame["customer_id"].nunique()
    assert manifest.recorded_at <= v2.created_at  # recorded before the version it trained
    assert v2.signature is not None
    assert "customer_id" not in [f.name for f in v2.signature.features]  # never a feature
    env = {"MODELREG_HOME": str(home), "MODELREG_SUBJECT_SECRET": None}
    args = ["--registry", f"sqlite:///{home}/registry.db", "lineage", "subject", customer]
    result = CliRunner(env=env).invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert {"dataset": "transactions", "version": "2026-11-01"} in found["datasets"]
    hits = {(v["name"], v["version"]): v for v in found["versions"]}
    assert hits[(MODEL, 2)]["live"] and hits[(MODEL, 2)]["why_live"] == ["Production"]


def test_a_retrained_version_records_what_it_cost(released_template: dict[str, Any]) -> None:
    with open_store(released_template["home"]) as store:
        metrics = store.get_version(MODEL, 2).metrics
    for key in ("train_cpu_s", "train_wall_s", "train_peak_rss_mb", "run_duration_s"):
        assert math.isfinite(metrics[key]) and metrics[key] > 0, (key, metrics.get(key))
    # Training is part of the run, and the run was measured up to its registration.
    assert metrics["train_wall_s"] < metrics["run_duration_s"]


def test_each_run_publishes_its_report_and_promotions_emit_events(
    released_template: dict[str, Any],
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    second = released_template["states"][1]
    with get_client(sync_client=True) as client:
        reports = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"release-{MODEL}"]))
        )
    mine = [a for a in reports if a.flow_run_id == second.state_details.flow_run_id]
    assert len(mine) == 1
    markdown = str(mine[0].data)
    for part in ("Metrics against production", "## Regions", "## Canary", "v2 promoted"):
        assert part in markdown
    # The server stores events in batches: wait for the second promotion's to land.
    deadline = time.monotonic() + 60
    while [2, 1] not in (promoted := promotions_seen()):
        assert time.monotonic() < deadline, f"model.promoted for v2 never arrived: {promoted}"
        time.sleep(0.5)


def promotions_seen() -> list[list[Any]]:
    """[version, previous] of each model.promoted event of the model so far."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        response = client.request(
            "POST",
            "/events/filter",
            json={"filter": {"event": {"name": ["model.promoted"]}}, "limit": 50},
        )
    return [
        [e["payload"]["version"], e["payload"]["previous"]]
        for e in response.json()["events"]
        if e["resource"]["prefect.resource.id"] == f"modelreg.model.{MODEL}"
    ]


def test_data_that_fails_validation_stops_the_run(home: Path, tmp_path: Path) -> None:
    from registry.pipeline import data

    frame = data.generate_transactions(THIRD, THIRD, rows=500, seed=1)
    frame.loc[:20, "amount"] = -5.0
    bad = tmp_path / "transactions-bad.csv"
    frame.drop(columns=["country"]).to_csv(bad, index=False)
    state = retrain_flow(model=MODEL, as_of=THIRD, data_path=str(bad), return_state=True)
    assert state.is_failed()
    assert "data validation failed" in state.message
    assert "amount" in state.message or "country" in state.message
    assert not (home / "registry.db").exists() or production(home) is None


def test_a_model_worse_than_production_is_refused_at_the_staging_gate(
    released_home: Path,
) -> None:
    state = retrain_flow(
        model=MODEL, as_of=THIRD, rows=ROWS, params={"degrade": True}, return_state=True
    )
    assert state.is_failed() and state.name == "Refused"
    assert isinstance(state.result(raise_on_failure=False), GateRefused)
    assert production(released_home) == 2
    with open_store(released_home) as store:
        assert store.get_version(MODEL, 3).stage is Stage.NONE
        assert store.replicas(MODEL, 3) == []
    [refusal] = refusals(released_home, 3)
    assert refusal.details.gate == "staging" and refusal.to_value is None
    # The fraud policy's floor and its no-regression rule, with the numbers.
    assert any(r.startswith("auc ") and "production v2" in r for r in refusal.details.reasons)
    assert state.message.startswith(f"{MODEL} v3 not promoted: staging gate: ")


def test_one_region_failing_replication_blocks_promotion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the region's folder should be")
    home = use_home(
        monkeypatch, tmp_path / "modelreg", MODELREG_REGION_ROOTS=f"ap-south={blocker}/ap-south"
    )
    state = retrain_flow(model=MODEL, as_of=THIRD, rows=ROWS, return_state=True)
    assert state.name == "Refused"
    with open_store(home) as store:
        replicas = {r.region: r.state.value for r in store.replicas(MODEL, 1)}
        health = store.latest_checks(MODEL, 1, "health")
    assert replicas == {"ap-south": "failed", "eu-west": "verified", "us-east": "verified"}
    assert sorted(health) == ["eu-west", "us-east"]
    assert production(home) is None
    # The retrain door: the refusal is in the history, naming the region and the run.
    [refusal] = refusals(home, 1)
    assert any("ap-south" in reason for reason in refusal.details.reasons)
    run = flow_run(state)
    origin = refusal.details.origin
    assert origin is not None and origin.flow == "retrain"
    assert (origin.run_id, origin.run_name) == (str(run.id), run.name)
    assert not [e for e in history(home) if e.to_value == "Production"]


def test_a_failed_health_check_blocks_promotion(released_home: Path) -> None:
    version = register_staged(released_home, artifact_of=1, golden_of=2)
    state = promote_flow(version=version, model=MODEL, return_state=True)
    assert state.name == "Refused"
    with open_store(released_home) as store:
        health = store.latest_checks(MODEL, version, "health")
    assert health and not any(c.passed for c in health.values())
    assert production(released_home) == 2
    assert any("health check failed" in r for r in refusal_reasons(released_home, version))


def test_a_canary_regression_blocks_promotion(released_home: Path) -> None:
    # A threshold far too low: the same ranking (AUC) as a good model, so it passes the
    # staging gate, but it flags most traffic as fraud; only the canary can catch it.
    state = retrain_flow(
        model=MODEL, as_of=THIRD, rows=ROWS, params={"threshold": 0.02}, return_state=True
    )
    assert state.name == "Refused", state.message
    with open_store(released_home) as store:
        assert store.get_version(MODEL, 3).stage is Stage.STAGING
        canary = store.latest_checks(MODEL, 3, "canary")[None]
        assert all(c.passed for c in store.latest_checks(MODEL, 3, "health").values())
    assert canary.passed is False and canary.evidence["baseline_version"] == 2
    assert canary.evidence["error_candidate"] > canary.evidence["error_production"]
    assert production(released_home) == 2
    assert any("canary failed" in r for r in refusal_reasons(released_home, 3))
