"""Tasks: stage, replicate and health-check per region, canary, and the gated promotion.

Every outcome is recorded in the registry (replica rows and checks), so the
promotion gate re-reads facts instead of trusting what a flow remembers. A task
whose check fails records it first and then fails, so the UI shows which region
or check broke and nothing downstream of it runs.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from prefect import task

from registry import GateRefused, InvalidInput, ModelVersion, NotFound, RegistryStore, Stage
from registry.models import ArtifactRef
from tasks.common import RETRY_DELAYS, transient_only
from tasks.registration import GOLDEN_SIZE_TAG, GOLDEN_TAG
from tasks.settings import RunSettings

CANARY_ROWS = 6_000
CANARY_DAYS = 7


class ReleaseCheckFailed(Exception):
    """A replication, health check or canary failed (it is recorded in the registry)."""


def _store(settings: RunSettings) -> RegistryStore:
    return settings.connect()


@task(
    name="stage",
    retries=2,
    retry_delay_seconds=RETRY_DELAYS[:2],
    retry_condition_fn=transient_only,
    timeout_seconds=300,
)
def stage(
    settings: RunSettings,
    name: str,
    version: int,
    evaluation: dict[str, Any] | None = None,
    validation: dict[str, Any] | None = None,
    thresholds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The None→Staging gate: record the evaluation (and validation) and move the version
    to Staging if the gate passed. Without ``evaluation`` (a version registered earlier,
    e.g. from the outbox), the gate compares its stored metrics with production's."""
    store = _store(settings)
    try:
        current = store.get_version(name, version)
        if validation is not None:
            store.record_check(name, version, "validation", passed=True, evidence=validation)
        if evaluation is None and current.stage is not Stage.NONE:
            # Staged earlier (or beyond): the promotion gate judges the stage it is in.
            return {"passed": True, "reasons": [], "stage": current.stage.value}
        if evaluation is None:
            evaluation = _stored_evaluation(store, current, thresholds)
        gate = evaluation["gate"]
        store.record_check(name, version, "evaluation", passed=gate["passed"], evidence=evaluation)
        if gate["passed"] and current.stage is Stage.NONE:
            store.transition(name, version, Stage.STAGING, reason="staging gate passed")
        stage_now = store.get_version(name, version).stage
    finally:
        store.close()
    return {"passed": gate["passed"], "reasons": gate["reasons"], "stage": stage_now.value}


def _stored_evaluation(
    store: RegistryStore, candidate: ModelVersion, thresholds: dict[str, float] | None
) -> dict[str, Any]:
    from registry.pipeline import evaluation

    production = store.get_model(candidate.name).production
    baseline: dict[str, Any] | None = None
    if production is not None and production != candidate.version:
        baseline = {
            "version": production,
            "metrics": store.get_version(candidate.name, production).metrics,
        }
    gate = evaluation.staging_gate(
        dict(candidate.metrics),
        None if baseline is None else dict(baseline["metrics"]),
        evaluation.GateThresholds.from_mapping(thresholds),
    )
    return {
        "metrics": dict(candidate.metrics),
        "production": baseline,
        "gate": {"passed": gate.passed, "reasons": list(gate.reasons)},
        "note": "stored metrics of the registered version against production's",
        "thresholds": thresholds or {},
    }


@task(name="replicate", retries=1, retry_delay_seconds=RETRY_DELAYS[:1])
def replicate(settings: RunSettings, name: str, version: int, region: str) -> dict[str, Any]:
    """Copy the version's bytes into one region and read them back (recorded as a replica)."""
    from registry.replication import replicate_one

    store = _store(settings)
    try:
        replica = replicate_one(
            store,
            settings.artifacts(),
            region,
            settings.region_store(region),
            name,
            version,
        )
    finally:
        store.close()
    if replica.state.value != "verified":
        raise ReleaseCheckFailed(f"replication to {region} failed: {replica.error}")
    return replica.model_dump(mode="json")


@task(name="health", retries=1, retry_delay_seconds=RETRY_DELAYS[:1])
def health(
    settings: RunSettings, name: str, version: int, region: str, replica: dict[str, Any]
) -> dict[str, Any]:
    """Load the region's replica in a fresh process and compare predictions on the golden
    batch with the ones recorded at training time (recorded as a ``health`` check)."""
    from registry.release.health import check_health

    store = _store(settings)
    try:
        current = store.get_version(name, version)
        ref = current.artifact
        region_store = settings.region_store(region)
        work = settings.work_root / "health" / region / uuid.uuid4().hex[:8]
        model_path = region_store.get_file(_at(ref, region_store), work / f"model.{ref.format}")
        golden = _golden(settings, current)
        result = check_health(
            str(model_path), ref.sha256, ref.size, golden, replica_uri=replica.get("uri")
        )
        evidence = result.model_dump(mode="json")
        store.record_check(
            name, version, "health", region=region, passed=result.passed, evidence=evidence
        )
    finally:
        store.close()
    if not result.passed:
        raise ReleaseCheckFailed(f"health check failed in {region}: {result.error}")
    return evidence


def _at(ref: ArtifactRef, store: Any) -> ArtifactRef:
    return ref.model_copy(update={"uri": store.uri_for(ref.sha256)})


def _golden(settings: RunSettings, version: ModelVersion) -> dict[str, Any]:
    sha, size = version.tags.get(GOLDEN_TAG), version.tags.get(GOLDEN_SIZE_TAG)
    if sha is None or size is None:
        raise NotFound(f"{version.name} v{version.version} has no golden batch ({GOLDEN_TAG} tag)")
    artifacts = settings.artifacts()
    dest = settings.work_root / "golden" / f"{sha}.json"
    if not dest.exists():
        ref = ArtifactRef(uri=artifacts.uri_for(sha), sha256=sha, size=int(size), format="json")
        artifacts.get_file(ref, dest)
    return json.loads(dest.read_text())


@task(
    name="canary",
    retries=1,
    retry_delay_seconds=RETRY_DELAYS[:1],
    retry_condition_fn=transient_only,
)
def canary(
    settings: RunSettings, name: str, version: int, *, seed: int = 0, rows: int = CANARY_ROWS
) -> dict[str, Any]:
    """Candidate and production on the same traffic (the week after the training data),
    with a pre-declared non-inferiority test; the evidence is stored with the version."""
    from registry.pipeline import data
    from registry.release.canary import ModelFile, run_canary
    from registry.release.policy import CanaryParams
    from tasks.training import local_copy

    store = _store(settings)
    try:
        candidate = store.get_version(name, version)
        production = store.get_model(name).production
        baseline = None if production in (None, version) else store.get_version(name, production)
        start = _traffic_start(candidate)
        traffic = data.generate_transactions(
            start, start + timedelta(days=CANARY_DAYS - 1), rows=rows, seed=seed + 7919
        )
        if candidate.signature is None:
            raise InvalidInput(f"{name} v{version} has no signature to read canary traffic with")
        cand = candidate.artifact
        prod = None if baseline is None else baseline.artifact
        result = run_canary(
            ModelFile(path=local_copy(settings, cand), sha256=cand.sha256, size=cand.size),
            None
            if prod is None
            else ModelFile(path=local_copy(settings, prod), sha256=prod.sha256, size=prod.size),
            traffic,
            signature=candidate.signature,
            params=CanaryParams(),  # the default policy's test until tasks read the stored one
            baseline_version=None if baseline is None else baseline.version,
        )
        evidence = {
            **result.model_dump(mode="json"),
            "traffic": {"start": start.isoformat(), "days": CANARY_DAYS, "rows": len(traffic)},
        }
        store.record_check(name, version, "canary", passed=result.passed, evidence=evidence)
    finally:
        store.close()
    if not result.passed:
        raise ReleaseCheckFailed(f"canary failed: {result.decision}")
    return evidence


def _traffic_start(candidate: ModelVersion) -> date:
    """The day after the candidate's training data ends (today if it does not say)."""
    for dataset in candidate.lineage.datasets:
        if dataset.date_range is not None:
            return dataset.date_range[1] + timedelta(days=1)
    return date.today()


@task(
    name="promote",
    retries=2,
    retry_delay_seconds=RETRY_DELAYS[:2],
    retry_condition_fn=transient_only,
)
def promote(
    settings: RunSettings,
    name: str,
    version: int,
    serving_schema: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """Re-check every gate against the store and flip Production with compare-and-swap,
    under the model's promotion lock (one promotion or rollback per model at a time).
    Refusals are recorded and raise ``GateRefused``."""
    from registry import gates

    schema = _read_schema(serving_schema)
    with gates.promotion_lock(settings.registry_url, name):
        store = _store(settings)
        try:
            before = store.get_model(name).production
            change = gates.promote(
                store,
                name,
                version,
                regions=settings.regions,
                serving_schema=schema,
                reason=reason,
            )
        finally:
            store.close()
    return {"version": version, "previous": before, "generation": change.generation}


@task(
    name="refuse-promotion",
    retries=2,
    retry_delay_seconds=RETRY_DELAYS[:2],
    retry_condition_fn=transient_only,
    timeout_seconds=300,
)
def refuse_promotion(
    settings: RunSettings,
    name: str,
    version: int,
    failures: list[str],
    serving_schema: str | None = None,
    *,
    with_gates: bool = True,
) -> list[str]:
    """Record why the promotion did not run: the failures, plus (``with_gates``) what
    the promotion gates themselves say now; the gates' facts go in the evidence."""
    from registry import gates

    store = _store(settings)
    try:
        facts = gates.collect_facts(
            store,
            name,
            version,
            regions=settings.regions,
            serving_schema=_read_schema(serving_schema),
        )
        decision = gates.decide(facts)
        gate_reasons = decision.reasons if with_gates else ()
        reasons = list(dict.fromkeys([*failures, *gate_reasons]))
        gates.record_refusal(store, name, version, reasons, decision.evidence)
    finally:
        store.close()
    return reasons


def _read_schema(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        schema: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise GateRefused(
            f"cannot read the serving schema {path}: {exc}", (f"serving schema unreadable: {exc}",)
        ) from exc
    return schema
