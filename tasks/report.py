"""What a person sees: the run's Prefect artifacts, and the events automations react to."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.events import emit_event

from registry import Settings
from registry.release.checks import EvaluationEvidence
from registry.release.report import read_report


def artifact_key(*parts: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def emit_model_event(event: str, name: str, payload: dict[str, Any]) -> None:
    """``model.promoted`` / ``model.rolled-back``: deployments' triggers can react to them."""
    resource = {"prefect.resource.id": f"modelreg.model.{name}", "prefect.resource.name": name}
    emit_event(event=event, resource=resource, payload=payload)


@task(name="release-report", retries=1, timeout_seconds=120)
def release_report(
    settings: Settings,
    name: str,
    version: int,
    title: str,
    summary: str,
    reasons: Sequence[str],
    evaluation: EvaluationEvidence | None = None,
) -> str:
    """Publish the markdown report and the region table, read back from the registry."""
    report = read_report(
        settings,
        name,
        version,
        title=title,
        summary=summary,
        reasons=reasons,
        evaluation=evaluation,
    )
    markdown = report.markdown()
    create_markdown_artifact(
        key=artifact_key("release", name),
        markdown=markdown,
        description=f"{name} v{version}: {summary}",
    )
    create_table_artifact(
        key=artifact_key("regions", name),
        table=[row.model_dump(mode="json") for row in report.regions],
        description=f"{name} v{version} by region",
    )
    return markdown
