"""What a person sees: the run's Prefect artifacts, and the events automations react to."""

from __future__ import annotations

import re
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.events import emit_event

from tasks.settings import RunSettings


def artifact_key(*parts: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def model_resource(name: str) -> dict[str, str]:
    return {"prefect.resource.id": f"modelreg.model.{name}", "prefect.resource.name": name}


def emit_model_event(event: str, name: str, payload: dict[str, Any]) -> None:
    """``model.promoted`` / ``model.rolled-back``: deployments' triggers can react to them."""
    emit_event(event=event, resource=model_resource(name), payload=payload)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def _row(*cells: Any) -> str:
    return "| " + " | ".join(_fmt(c) for c in cells) + " |"


def metrics_table(evaluation: dict[str, Any] | None) -> list[str]:
    """Candidate against production on the same holdout, and the staging gate's verdict."""
    if not evaluation:
        return []
    production = evaluation.get("production") or {}
    prod_metrics = production.get("metrics", {})
    label = f"production v{production['version']}" if production else "production"
    lines = [_row("metric", "candidate", label), "| --- | ---: | ---: |"]
    for key in ("auc", "f1", "precision", "recall", "latency_p99_ms"):
        if key in evaluation["metrics"]:
            lines.append(_row(key, evaluation["metrics"][key], prod_metrics.get(key)))
    gate = evaluation["gate"]
    verdict = "passed" if gate["passed"] else "refused: " + "; ".join(gate["reasons"])
    return [
        "## Metrics against production",
        "",
        *lines,
        "",
        f"Staging gate: **{verdict}** ({evaluation.get('note', '')})",
        "",
    ]


def region_table(regions: list[dict[str, Any]]) -> list[str]:
    if not regions:
        return []
    lines = ["## Regions", "", _row("region", "replica", "health", "p99 ms", "detail")]
    lines.append("| --- | --- | --- | ---: | --- |")
    for r in regions:
        lines.append(
            _row(r["region"], r["replica"], r["health"], r.get("latency_p99_ms"), r.get("detail"))
        )
    return [*lines, ""]


def canary_table(canary: dict[str, Any] | None) -> list[str]:
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
        _row("samples", canary.get("n_candidate"), canary.get("n_production")),
        _row("error rate", canary.get("error_candidate"), canary.get("error_production")),
        "",
        f"Test: {canary.get('test')}; statistic {_fmt(canary.get('statistic'))}, "
        f"p-value {_fmt(canary.get('p_value'))}, alpha {canary.get('alpha')}, "
        f"margin {canary.get('margin')}; compared with production "
        f"{_fmt(canary.get('production_version'))}",
        "",
    ]


def release_markdown(title: str, facts: dict[str, Any]) -> str:
    """The run's story: metrics, regions, canary, then the decision and its reasons."""
    out = [f"# {title}", ""]
    out += metrics_table(facts.get("evaluation"))
    out += region_table(facts.get("regions") or [])
    out += canary_table(facts.get("canary"))
    decision = facts.get("decision")
    if decision:
        out += ["## Decision", "", decision["summary"], ""]
        out += [f"- {reason}" for reason in decision.get("reasons", [])]
    return "\n".join(out) + "\n"


@task(name="release-report", retries=1, timeout_seconds=120)
def release_report(
    settings: RunSettings,
    name: str,
    version: int,
    *,
    title: str,
    decision: dict[str, Any],
    evaluation: dict[str, Any] | None = None,
) -> str:
    """Publish the markdown report and the region table, read back from the registry."""
    store = settings.connect()
    try:
        replicas = {r.region: r for r in store.replicas(name, version)}
        health = store.latest_checks(name, version, "health")
        canary = store.latest_checks(name, version, "canary").get(None)
    finally:
        store.close()
    regions = []
    for region in settings.regions:
        replica, check = replicas.get(region), health.get(region)
        regions.append(
            {
                "region": region,
                "replica": replica.state.value if replica else "not started",
                "health": ("passed" if check.passed else "failed") if check else "not run",
                "latency_p99_ms": check.evidence.get("latency_p99_ms") if check else None,
                "detail": (replica.error if replica and replica.error else None)
                or (check.evidence.get("error") if check else None),
            }
        )
    markdown = release_markdown(
        title,
        {
            "evaluation": evaluation,
            "regions": regions,
            "canary": None if canary is None else canary.evidence | {"passed": canary.passed},
            "decision": decision,
        },
    )
    create_markdown_artifact(
        key=artifact_key("release", name),
        markdown=markdown,
        description=f"{name} v{version}: {decision['summary']}",
    )
    create_table_artifact(
        key=artifact_key("regions", name), table=regions, description=f"{name} v{version} by region"
    )
    return markdown
