"""Tasks of the backup flow: take, verify, shelve, prune (``registry.backup_shelf``).

Nothing here is cached: every run takes a new backup. Taking retries while the
registry's database is unreachable, shelving and pruning while the artifact store
is; a backup file is written whole or not at all, and a shelf entry is never listed
until it is checked, so a retry starts clean.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from registry import Settings
from registry.backup import BackupInfo, verify
from registry.backup_shelf import ShelfEntry, open_shelf, take
from tasks.common import RETRY_DELAYS, transient_only


@task(
    name="take-backup",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=transient_only,
    timeout_seconds=3600,
)
def take_backup(settings: Settings) -> Path:
    """A consistent snapshot of the registry, as a file in a new folder of the work root
    (the flow removes it once the backup is shelved)."""
    return take(settings.registry_url, settings.work_root)


@task(name="verify-backup", cache_policy=NO_CACHE, timeout_seconds=1800)
def verify_backup(path: Path) -> BackupInfo:
    """Every table against its checksum and row count, before anything is shelved."""
    return verify(path)


@task(
    name="shelve-backup",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=RETRY_DELAYS,
    retry_condition_fn=transient_only,
    timeout_seconds=3600,
)
def shelve_backup(shelf_root: str, path: Path) -> ShelfEntry:
    """Upload to the shelf under ``shelf_root``, read back and checked (a retry of the
    same file is a no-op once it landed)."""
    return open_shelf(shelf_root).put(path)


@task(
    name="prune-shelf",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=RETRY_DELAYS[:2],
    retry_condition_fn=transient_only,
    timeout_seconds=600,
)
def prune_shelf(shelf_root: str, keep: int, protect: str) -> list[str]:
    """Delete all but the newest ``keep`` backups, never ``protect`` (the one just shelved)."""
    return open_shelf(shelf_root).prune(keep, protect=protect)
