"""The promotion gates: re-checked against the store right before the pointer flips.

Nothing a flow remembers counts: the facts (replicas verified with the right
sha256 in every region, the latest health check of each region, the latest
canary and the production version it was compared with, the signature against
the serving schema) are read back from the registry, decided by the pure
``decide``, and the flip is a compare-and-swap on the generation the facts were
read at. Every decision, accepted or refused, is recorded as a ``promotion`` check.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from registry.errors import Conflict, GateRefused, RegistryUnavailable
from registry.models import PointerChange, Stage
from registry.policy import Decision
from registry.store.base import RegistryStore

PROMOTION = "promotion"
LOCK_TIMEOUT_S = 600.0
_LOCK_POLL_S = 0.05


@dataclass(frozen=True)
class RegionHealth:
    region: str
    passed: bool | None  # None: no health check recorded
    error: str | None = None


@dataclass(frozen=True)
class PromotionFacts:
    """What the store says about a candidate, read in one place."""

    name: str
    version: int
    stage: str
    generation: int
    production: int | None
    regions: tuple[str, ...]
    not_ready: tuple[str, ...]
    health: tuple[RegionHealth, ...]
    canary_passed: bool | None  # None: no canary recorded
    canary_decision: str | None = None
    canary_baseline: int | None = None  # the production version the canary compared with
    schema_source: str | None = None  # where the serving schema came from (None: no schema)
    signature_problems: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)


def decide(facts: PromotionFacts) -> Decision:
    """Every gate, every reason: promote only when the list of reasons is empty."""
    reasons: list[str] = []
    v = facts.version
    if facts.stage != Stage.STAGING.value:
        reasons.append(f"version {v} is in {facts.stage}, not Staging")
    if not facts.regions:
        reasons.append("no regions configured: nothing to verify")
    if facts.not_ready:
        reasons.append(f"replica not verified in {', '.join(facts.not_ready)}")
    for region in facts.health:
        if region.passed is None:
            reasons.append(f"no health check in {region.region}")
        elif not region.passed:
            reasons.append(f"health check failed in {region.region}: {region.error or 'failed'}")
    if facts.canary_passed is None:
        reasons.append("no canary result")
    elif not facts.canary_passed:
        reasons.append(f"canary failed: {facts.canary_decision or 'regression'}")
    elif facts.canary_baseline != facts.production:
        reasons.append(
            f"production changed since the canary (compared with {_v(facts.canary_baseline)}, "
            f"production is {_v(facts.production)}): re-run the canary"
        )
    if facts.signature_problems:
        reasons.append(
            f"signature incompatible with the serving schema ({facts.schema_source}): "
            + "; ".join(facts.signature_problems)
        )
    return Decision(not reasons, tuple(reasons), evidence=facts_evidence(facts))


def _v(version: int | None) -> str:
    return "none" if version is None else f"v{version}"


def facts_evidence(facts: PromotionFacts) -> dict[str, Any]:
    """The facts as JSON-able evidence for the ``promotion`` check."""
    data = asdict(facts)
    data.pop("evidence")
    return {**data, **facts.evidence}


def collect_facts(
    store: RegistryStore,
    name: str,
    version: int,
    *,
    regions: Sequence[str],
    serving_schema: Mapping[str, Any] | None = None,
) -> PromotionFacts:
    """Read every fact the gates need from the store.

    ``serving_schema`` is the schema the serving code publishes; without one, the
    signature of the current Production version stands in for it (none on a first release).
    """
    model = store.get_model(name)
    candidate = store.get_version(name, version)
    regions = tuple(regions)
    health = store.latest_checks(name, version, "health")
    canary = store.latest_checks(name, version, "canary").get(None)
    schema, source = _serving_schema(store, name, model.production, serving_schema)
    problems: list[str] = []
    if schema is not None:
        if candidate.signature is None:
            problems.append("the version has no signature")
        else:
            from registry.release.signature import compatibility_problems

            problems = compatibility_problems(candidate.signature.model_dump(), dict(schema))
    baseline = None
    if canary is not None:
        raw = canary.evidence.get("baseline_version")
        baseline = raw if isinstance(raw, int) else None
    return PromotionFacts(
        name=name,
        version=version,
        stage=candidate.stage.value,
        generation=model.generation,
        production=model.production,
        regions=regions,
        not_ready=tuple(store.ready_in_regions(name, version, regions)),
        health=tuple(
            RegionHealth(
                r,
                None if r not in health else health[r].passed,
                None if r not in health else _error(health[r].evidence),
            )
            for r in regions
        ),
        canary_passed=None if canary is None else canary.passed,
        canary_decision=None if canary is None else str(canary.evidence.get("decision", "")),
        canary_baseline=baseline,
        schema_source=source,
        signature_problems=tuple(problems),
    )


def _error(evidence: Mapping[str, Any]) -> str | None:
    error = evidence.get("error")
    return None if error is None else str(error)


def _serving_schema(
    store: RegistryStore,
    name: str,
    production: int | None,
    given: Mapping[str, Any] | None,
) -> tuple[Mapping[str, Any] | None, str | None]:
    if given is not None:
        return given, "given serving schema"
    if production is None:
        return None, None
    signature = store.get_version(name, production).signature
    if signature is None:
        return None, None
    return signature.model_dump(), f"signature of production v{production}"


def promote(
    store: RegistryStore,
    name: str,
    version: int,
    *,
    regions: Sequence[str],
    serving_schema: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> PointerChange:
    """Re-check every gate, then flip Production to ``version`` with compare-and-swap.

    Raises ``GateRefused`` (after recording why) when a gate says no or another
    pointer change won the race between the check and the flip.
    """
    facts = collect_facts(store, name, version, regions=regions, serving_schema=serving_schema)
    decision = decide(facts)
    if not decision.ok:
        raise record_refusal(store, name, version, decision.reasons, decision.evidence)
    try:
        change = store.transition(
            name,
            version,
            Stage.PRODUCTION,
            expected_generation=facts.generation,
            reason=reason or "promotion gates passed",
        )
    except Conflict as exc:
        reasons = (f"lost a race with another change: {exc}",)
        raise record_refusal(store, name, version, reasons, decision.evidence) from exc
    store.record_check(
        name,
        version,
        PROMOTION,
        passed=True,
        evidence={**decision.evidence, "reasons": [], "generation": change.generation},
    )
    return change


def record_refusal(
    store: RegistryStore,
    name: str,
    version: int,
    reasons: Sequence[str],
    evidence: Mapping[str, Any],
) -> GateRefused:
    """Record a refused promotion and why; return the error for the caller to raise."""
    store.record_check(
        name, version, PROMOTION, passed=False, evidence={**evidence, "reasons": list(reasons)}
    )
    return GateRefused(f"promotion of {name} v{version} refused: {reasons[0]}", tuple(reasons))


# ---------------------------------------------------------------- one at a time


@contextmanager
def promotion_lock(
    registry_url: str, name: str, *, timeout: float = LOCK_TIMEOUT_S
) -> Iterator[None]:
    """Hold the model's promotion lock: one pointer flip per model at a time.

    Scoped like the registry itself, and released by the operating system or the
    database if the holder dies: a lock file next to a SQLite registry (every writer
    of that file is on this machine), a session advisory lock on PostgreSQL. The
    compare-and-swap still decides a race on its own; the lock makes the second
    promotion wait, then re-check the gates against what the first one did.
    ``Conflict`` if the lock stays taken for ``timeout`` seconds.
    """
    from sqlalchemy.engine import make_url

    from registry.store.sql.engine import normalise_url

    url = make_url(normalise_url(registry_url))
    if url.get_backend_name() == "sqlite":
        with _file_lock(Path(url.database or ""), name, timeout):
            yield
        return
    with _advisory_lock(url.render_as_string(hide_password=False), name, timeout):
        yield


@contextmanager
def _file_lock(database: Path, name: str, timeout: float) -> Iterator[None]:
    safe = re.sub(r"[^a-z0-9-]", "-", name)
    path = database.parent / f"{database.name}.promote-{safe}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _wait(lambda: _try_flock(fd), name, timeout)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def _advisory_lock(url: str, name: str, timeout: float) -> Iterator[None]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    key = int.from_bytes(hashlib.sha256(f"modelreg.promote:{name}".encode()).digest()[:8], "big")
    key -= 1 << 63 if key >= 1 << 63 else 0  # a signed bigint
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            take = text("SELECT pg_try_advisory_lock(:k)")
            _wait(lambda: bool(conn.execute(take, {"k": key}).scalar()), name, timeout)
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    except SQLAlchemyError as exc:
        raise RegistryUnavailable(f"cannot take the promotion lock of {name!r}: {exc}") from exc
    finally:
        engine.dispose()


def _wait(attempt: Callable[[], bool], name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not attempt():
        if time.monotonic() >= deadline:
            raise Conflict(
                f"another promotion or rollback of {name!r} held its lock for {timeout}s"
            )
        time.sleep(_LOCK_POLL_S)
