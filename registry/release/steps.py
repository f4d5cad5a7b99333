"""The release pipeline's steps over the registry, as the Prefect tasks call them.

Each step opens the registry from ``Settings`` (with the flow run as ``origin``, so
every change it makes says which run made it), does one thing, records it, and
returns a typed value. The decisions are the store's gates; these steps only
gather facts (replicas, health, approvals) and ask for the moves.

    stage ─► replicate x region ─► health x region ─► (canary) ─► [approval] ─► promote
    rollback (on demand)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from registry.config import Settings
from registry.errors import Conflict, GateRefused, NotFound, ReleaseCheckFailed
from registry.models import ArtifactRef, ModelVersion, Origin, Stage
from registry.release.checks import CheckKind, EvaluationEvidence
from registry.release.health import HealthEvidence
from registry.release.lock import promotion_lock
from registry.release.policy import ApprovalStatus, ReleasePolicy
from registry.release_models import Replica, ReplicaState

# Tags a registration carries so health checks can find its golden batch (inputs
# and the predictions the model gave them at training time).
GOLDEN_TAG = "golden_sha256"
GOLDEN_SIZE_TAG = "golden_size"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StageOutcome(_Frozen):
    passed: bool
    reasons: tuple[str, ...] = ()
    stage: Stage


class Promotion(_Frozen):
    name: str
    version: int
    previous: int | None
    generation: int
    moved: bool = True  # False: the version was in Production already (another run won)


class Rollback(_Frozen):
    name: str
    from_version: int | None
    to_version: int
    generation: int
    reason: str


def policy(settings: Settings, name: str) -> ReleasePolicy:
    """The policy in force for ``name`` (the default for a model with none)."""
    with settings.connect() as store:
        try:
            return store.get_policy(name).policy
        except NotFound:
            return ReleasePolicy()


def stage(
    settings: Settings,
    name: str,
    version: int,
    *,
    evaluation: EvaluationEvidence | None = None,
    validation: dict[str, Any] | None = None,
    reason: str | None = None,
    origin: Origin | None = None,
) -> StageOutcome:
    """Record the evaluation (and validation), then ask the store's staging gate to move
    the version None -> Staging. A version already staged or further is left as it is:
    the promotion gate judges the stage it is in."""
    with settings.connect(origin=origin) as store:
        current = store.get_version(name, version)
        if validation is not None:
            store.record_check(
                name, version, CheckKind.VALIDATION, passed=True, evidence=validation
            )
        if evaluation is not None:
            store.record_check(
                name,
                version,
                CheckKind.EVALUATION,
                passed=True,
                evidence=evaluation.model_dump(mode="json"),
            )
        if current.stage is not Stage.NONE:
            return StageOutcome(passed=True, stage=current.stage)
        try:
            store.transition(name, version, Stage.STAGING, reason=reason)
        except GateRefused as refused:
            return StageOutcome(passed=False, reasons=refused.reasons, stage=current.stage)
        return StageOutcome(passed=True, stage=Stage.STAGING)


def replicate(
    settings: Settings, name: str, version: int, region: str, *, origin: Origin | None = None
) -> Replica:
    """Copy the version's bytes into ``region`` and read them back (retried inside)."""
    from registry.replication import replicate_one

    with settings.connect(origin=origin) as store:
        replica = replicate_one(
            store, settings.artifacts(), region, settings.region_store(region), name, version
        )
    if replica.state is not ReplicaState.VERIFIED:
        raise ReleaseCheckFailed(f"replication to {region} failed: {replica.error}")
    return replica


def health(
    settings: Settings, name: str, version: int, region: str, *, origin: Origin | None = None
) -> HealthEvidence:
    """Load the region's replica in a fresh process and compare its predictions on the
    golden batch with those recorded at training time (a ``health`` check)."""
    from registry.release.health import check_health

    with settings.connect(origin=origin) as store:
        current = store.get_version(name, version)
        ref = current.artifact
        region_store = settings.region_store(region)
        at_region = ref.model_copy(update={"uri": region_store.uri_for(ref.sha256)})
        work = settings.work_root / "health" / region / uuid.uuid4().hex[:8]
        model_path = region_store.get_file(at_region, work / f"model.{ref.format}")
        result = check_health(
            str(model_path),
            ref.sha256,
            ref.size,
            golden_batch(settings, current),
            replica_uri=at_region.uri,
        )
        store.record_check(
            name,
            version,
            CheckKind.HEALTH,
            region=region,
            passed=result.passed,
            evidence=result.model_dump(mode="json"),
        )
    if not result.passed:
        raise ReleaseCheckFailed(f"health check failed in {region}: {result.error}")
    return result


def golden_batch(settings: Settings, version: ModelVersion) -> dict[str, Any]:
    """The version's golden batch, downloaded (and verified) once per digest."""
    sha, size = version.tags.get(GOLDEN_TAG), version.tags.get(GOLDEN_SIZE_TAG)
    if sha is None or size is None:
        raise NotFound(f"{version.name} v{version.version} has no golden batch ({GOLDEN_TAG} tag)")
    artifacts = settings.artifacts()
    dest = settings.work_root / "golden" / f"{sha}.json"
    if not dest.exists():
        ref = ArtifactRef(uri=artifacts.uri_for(sha), sha256=sha, size=int(size), format="json")
        artifacts.get_file(ref, dest)
    batch: dict[str, Any] = json.loads(dest.read_text())
    return batch


def local_copy(settings: Settings, ref: ArtifactRef) -> Path:
    """A verified local file of an artifact (downloaded once per content digest)."""
    dest = settings.work_root / "artifacts" / f"{ref.sha256}.{ref.format}"
    if not dest.exists():
        settings.artifacts().get_file(ref, dest)
    return dest


# ---------------------------------------------------------------- approvals


def approval_status(settings: Settings, name: str, version: int) -> ApprovalStatus:
    with settings.connect() as store:
        return store.approval_status(name, version)


def request_approval(
    settings: Settings, name: str, version: int, needed: int, *, origin: Origin | None = None
) -> None:
    with settings.connect(origin=origin) as store:
        store.request_approval(name, version, needed=needed)


def record_approval(
    settings: Settings,
    name: str,
    version: int,
    approver: str,
    reason: str,
    *,
    origin: Origin | None = None,
) -> str | None:
    """Record ``approver``'s approval (given in the Prefect UI); None if recorded or
    already there, else why it does not count (the registrant approving their own)."""
    with settings.as_actor(approver).connect(origin=origin) as store:
        if approver in store.approval_status(name, version).approvers:
            return None  # recorded already (``modelreg approve`` resumed the run)
        try:
            store.approve(name, version, reason=reason)
        except Conflict as exc:
            return str(exc)
    return None


# ---------------------------------------------------------------- the pointer moves


def promote(
    settings: Settings,
    name: str,
    version: int,
    *,
    reason: str | None = None,
    origin: Origin | None = None,
) -> Promotion:
    """Ask the store's promotion gate to flip Production to ``version``, under the
    model's promotion lock (one promotion or rollback per model at a time).
    ``GateRefused`` (recorded by the store) when a gate says no."""
    with promotion_lock(settings.registry_url, name), settings.connect(origin=origin) as store:
        before = store.get_model(name).production
        change = store.promote(name, version, reason=reason)
    moved = bool(change.events)
    return Promotion(
        name=name,
        version=version,
        previous=before if moved else None,
        generation=change.generation,
        moved=moved,
    )


def refuse(
    settings: Settings,
    name: str,
    version: int,
    failures: Sequence[str],
    *,
    origin: Origin | None = None,
) -> GateRefused:
    """Record why a release did not reach the promotion gate: the failed steps, and what
    the gate says now (a dry run); returns the error with every reason."""
    with settings.connect(origin=origin) as store:
        reasons = list(dict.fromkeys([*failures, *store.check_promotion(name, version)]))
        return store.record_refusal(
            name, version, reasons or ["a step before promote did not complete"]
        )


def rollback(
    settings: Settings,
    name: str,
    reason: str,
    *,
    to: int | None = None,
    origin: Origin | None = None,
) -> Rollback:
    """Put the previous good version (or ``to``) back in Production, under the lock."""
    with promotion_lock(settings.registry_url, name), settings.connect(origin=origin) as store:
        before = store.get_model(name).production
        change = store.rollback(name, to=to, reason=reason)
        after = store.get_model(name).production
    assert after is not None  # a rollback always leaves a version in Production
    return Rollback(
        name=name,
        from_version=before,
        to_version=after,
        generation=change.generation,
        reason=reason,
    )


class ReleaseOutcome(_Frozen):
    """What a release run decided: promoted, or not and every reason why."""

    name: str
    version: int
    promoted: bool
    previous: int | None = None
    reasons: tuple[str, ...] = ()
    already: bool = False  # in Production before this run's promote (it changed nothing)

    @property
    def summary(self) -> str:
        if self.already:
            return f"{self.name} v{self.version} is already in Production (nothing changed)"
        if self.promoted:
            was = f" (was v{self.previous})" if self.previous is not None else " (first release)"
            return f"{self.name} v{self.version} promoted to Production{was}"
        first = self.reasons[0] if self.reasons else "refused"
        return f"{self.name} v{self.version} not promoted: {first}"
