"""``modelreg gc``: remove artifact bytes no version references (``registry.retention``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from registry.artifacts.base import ArtifactStore
    from registry.config import Settings
    from registry.retention import GcReport, VersionGone


@click.command()
@click.option("--dry-run", is_flag=True, help="List what would be removed; change nothing.")
@click.option(
    "--min-age",
    "min_age",
    metavar="DURATION",
    default="24h",
    show_default=True,
    help="Leave unreferenced bytes younger than this (90s, 30m, 24h, 7d, 2w): an upload "
    "whose registration has not committed yet must never be collected.",
)
@click.option(
    "--keep-versions",
    "keep_versions",
    type=click.IntRange(min=0),
    metavar="N",
    help="Also delete each model's versions older than its N newest that never served in "
    "Production, carry no alias or binding, and are in stage None or Archived.",
)
@json_option
@pass_state
def gc(state: CliState, dry_run: bool, min_age: str, keep_versions: int | None) -> None:
    """Remove artifact bytes no version references, from every artifact store.

    Never touches the bytes of a version that ever served in Production, is bound
    by an app release, or holds an alias or a stage; never touches keys that are not
    content keys (backups, uploads in progress). Each removal is an
    artifact.collected event on the model that had the bytes, and a line in
    $MODELREG_HOME/gc.log.
    """
    from registry.retention import GcOptions, collect, parse_duration

    settings = state.settings()
    options = GcOptions(
        min_age=parse_duration(min_age),
        keep_versions=keep_versions,
        dry_run=dry_run,
        log_path=settings.home / "gc.log",
        pending=_pending(settings),
    )
    report = collect(state.store(), _stores(settings), options)
    if state.json:
        click.echo(report.model_dump_json(indent=2))
        return
    for line in _lines(report, settings):
        click.echo(line)


def _stores(settings: Settings) -> dict[str, ArtifactStore]:
    """The main artifact store and every region's, each location once."""
    from registry.retention import MAIN_STORE

    stores = {MAIN_STORE: settings.artifacts()}
    seen = {repr(stores[MAIN_STORE])}
    for region in settings.regions:
        store = settings.region_store(region)
        if repr(store) not in seen:
            seen.add(repr(store))
            stores[region] = store
    return stores


def _pending(settings: Settings) -> frozenset[str]:
    """Digests not referenced yet that this machine still means to record: registrations
    queued in its outbox, and subject manifests noted while the registry was down."""
    from registry.subjects import pending_manifests

    noted = pending_manifests(settings)
    if not settings.outbox_path.exists():
        return noted
    from registry.outbox import Outbox

    queued = Outbox(settings.outbox_path).pending()
    return noted | frozenset(entry.artifact.sha256 for entry in queued)


def _lines(report: GcReport, settings: Settings) -> list[str]:
    verb = "would remove" if report.dry_run else "removed"
    lines = [_version_line(v, report.dry_run) for v in report.versions]
    for item in report.artifacts:
        via = f" (a file of bundle {item.via[:12]})" if item.via else ""
        lines.append(f"{verb} {item.store} {item.sha256[:12]} {_size(item.size)}{via}")
    events = sum(1 for item in report.artifacts if item.event is not None)
    summary = (
        f"{verb} {len(report.artifacts)} objects, {_size(report.bytes_freed)}, from "
        f"{', '.join(report.stores)}; kept {report.kept} referenced and {report.young} "
        f"younger than {_age(report.min_age_s)}"
    )
    if not report.dry_run and report.artifacts:
        unattributed = len(report.artifacts) - events
        summary += f"; {events} events"
        if unattributed:
            summary += f", {unattributed} never registered (logged in {settings.home / 'gc.log'})"
    lines.append(summary)
    return lines


def _version_line(gone: VersionGone, dry_run: bool) -> str:
    if gone.refused:
        return f"kept version {gone.version} of {gone.model}: {gone.refused}"
    verb = "would delete" if dry_run else "deleted"
    return f"{verb} version {gone.version} of {gone.model}"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _age(seconds: float) -> str:
    from datetime import timedelta

    from registry.retention import format_duration

    return format_duration(timedelta(seconds=seconds))
