"""The release report a person reads: metrics against Production, each region's replica
and health, the canary's evidence, and the decision with its reasons (markdown)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from registry.config import Settings
from registry.release.checks import CheckKind, EvaluationEvidence

SHOWN_METRICS = ("auc", "f1", "precision", "recall", "latency_p99_ms")


class RegionRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    region: str
    replica: str
    health: str
    latency_p99_ms: float | None = None
    detail: str | None = None


class ReleaseReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    name: str
    version: int
    summary: str
    reasons: tuple[str, ...] = ()
    evaluation: EvaluationEvidence | None = None
    regions: tuple[RegionRow, ...] = ()
    canary: dict[str, Any] | None = None

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        out += _metrics(self.evaluation)
        out += _regions(self.regions)
        out += _canary(self.canary)
        out += ["## Decision", "", self.summary, ""]
        out += [f"- {reason}" for reason in self.reasons]
        return "\n".join(out) + "\n"


def read_report(
    settings: Settings,
    name: str,
    version: int,
    *,
    title: str,
    summary: str,
    reasons: Sequence[str],
    evaluation: EvaluationEvidence | None,
) -> ReleaseReport:
    """The report of ``version``, its facts read back from the registry."""
    with settings.connect() as store:
        regions = store.get_policy(name).policy.regions
        replicas = {r.region: r for r in store.replicas(name, version)}
        health = store.latest_checks(name, version, CheckKind.HEALTH)
        canary = store.latest_checks(name, version, CheckKind.CANARY).get(None)
    rows = []
    for region in regions:
        replica, check = replicas.get(region), health.get(region)
        latency = None if check is None else check.evidence.get("latency_p99_ms")
        error = None if check is None else check.evidence.get("error")
        rows.append(
            RegionRow(
                region=region,
                replica=replica.state.value if replica else "not started",
                health=("passed" if check.passed else "failed") if check else "not run",
                latency_p99_ms=latency if isinstance(latency, int | float) else None,
                detail=(replica.error if replica and replica.error else None)
                or (str(error) if error else None),
            )
        )
    return ReleaseReport(
        title=title,
        name=name,
        version=version,
        summary=summary,
        reasons=tuple(reasons),
        evaluation=evaluation,
        regions=tuple(rows),
        canary=None if canary is None else {**canary.evidence, "passed": canary.passed},
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _row(*cells: Any) -> str:
    return "| " + " | ".join(_fmt(c) for c in cells) + " |"


def _metrics(evaluation: EvaluationEvidence | None) -> list[str]:
    if evaluation is None:
        return []
    production = evaluation.production_metrics or {}
    label = (
        f"production v{evaluation.production_version}"
        if evaluation.production_version
        else "production"
    )
    lines = [_row("metric", "candidate", label), "| --- | ---: | ---: |"]
    for key in SHOWN_METRICS:
        if key in evaluation.metrics:
            lines.append(_row(key, evaluation.metrics[key], production.get(key)))
    return ["## Metrics against production", "", *lines, "", f"({evaluation.note})", ""]


def _regions(regions: Sequence[RegionRow]) -> list[str]:
    if not regions:
        return []
    lines = ["## Regions", "", _row("region", "replica", "health", "p99 ms", "detail")]
    lines.append("| --- | --- | --- | ---: | --- |")
    for r in regions:
        lines.append(_row(r.region, r.replica, r.health, r.latency_p99_ms, r.detail))
    return [*lines, ""]


def _canary(canary: dict[str, Any] | None) -> list[str]:
    if not canary:
        return []
    verdict = "passed" if canary.get("passed") else "failed"
    return [
        "## Canary",
        "",
        f"Decision: **{canary.get('decision')}** ({verdict})",
        "",
        _row("", "candidate", "production"),
        "| --- | ---: | ---: |",
        _row("paired rows", canary.get("n"), canary.get("n")),
        _row("error rate", canary.get("error_candidate"), canary.get("error_production")),
        _row(
            "wrong only here",
            canary.get("discordant_candidate_worse"),
            canary.get("discordant_candidate_better"),
        ),
        "",
        f"Test: {canary.get('test')}; statistic {_fmt(canary.get('statistic'))}, "
        f"p-value {_fmt(canary.get('p_value'))}, alpha {canary.get('alpha')}, "
        f"margin {canary.get('margin')}; compared with production "
        f"{_fmt(canary.get('baseline_version'))}",
        "",
    ]
