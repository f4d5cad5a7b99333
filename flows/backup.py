"""The backup flow (nightly): a consistent backup of the registry's metadata, kept
on the shelf beside the artifacts (``backups/`` under the artifact root, a folder
or S3), the newest ``keep`` of them.

    take ─► verify ─► shelve ─► prune      (prune runs only once the new backup is shelved)
"""

from __future__ import annotations

import shutil
from typing import Annotated, Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed
from pydantic import Field

from registry import RegistryError, Settings
from registry.backup_shelf import BackupRun
from tasks.backup import prune_shelf, shelve_backup, take_backup, verify_backup


@flow(name="backup")
def backup_flow(
    keep: Annotated[int, Field(ge=1)] = 14,
    shelf: str | None = None,
) -> State[Any]:
    """Back up the registry onto the shelf under the artifact root (or ``shelf``: a
    folder or s3://bucket/prefix) and keep the newest ``keep`` backups there."""
    settings = Settings.from_env()
    root = shelf or settings.artifact_root
    try:
        path = take_backup(settings)
    except RegistryError as exc:
        return Failed(message=f"no backup taken, the shelf is unchanged: {exc}", data=exc)
    try:
        verify_backup(path)
        entry = shelve_backup(root, path)
        pruned = prune_shelf(root, keep, entry.name)
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
    result = BackupRun.of(entry, pruned)
    create_markdown_artifact(
        key="registry-backup", markdown=_report(result), description=result.summary()
    )
    return Completed(message=result.summary(), data=result)


def _report(result: BackupRun) -> str:
    pruned = "".join(f"- {name}\n" for name in result.pruned) or "- nothing\n"
    return (
        f"# Registry backup\n\n| | |\n| --- | --- |\n| name | {result.name} |\n"
        f"| where | {result.uri} |\n| size | {result.size:,} bytes |\n"
        f"| registry seq | {result.seq} |\n| sha256 | `{result.sha256}` |\n\n"
        f"Pruned:\n\n{pruned}"
    )


if __name__ == "__main__":
    backup_flow()
