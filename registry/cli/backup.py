"""``modelreg backup`` and ``modelreg restore``: the registry's metadata in one file.

A backup is taken online (writers keep writing) and is consistent; it restores into
an empty registry of either backend. Artifact bytes are not in it: they are in the
artifact store, backed up on their own.

``--shelf`` puts the backup on the shelf under the artifact root (``backups/``, a
folder or S3; see ``registry.backup_shelf``), ``backup list`` shows the shelf, and
``restore`` takes a shelf entry's name or ``--latest`` as well as a file.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from registry.backup_shelf import Shelf, ShelfEntry

F = TypeVar("F", bound=Callable[..., Any])


def shelf_root_option(command: F) -> F:
    return click.option(
        "--shelf-root",
        metavar="ROOT",
        help="The artifact root whose backups/ shelf to use (a folder or s3://bucket/prefix; "
        "default: $MODELREG_ARTIFACTS).",
    )(command)


def _shelf(state: CliState, root: str | None) -> Shelf:
    from registry.backup_shelf import open_shelf

    return open_shelf(root or state.settings().artifact_root)


@click.group(invoke_without_command=True)
@click.option(
    "--to",
    "dest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write (a tar: a manifest with checksums, and every table).",
)
@click.option(
    "--shelf",
    "to_shelf",
    is_flag=True,
    help="Put the backup on the shelf: backups/ under the artifact root (a folder or S3).",
)
@click.option(
    "--keep",
    type=int,
    metavar="N",
    help="With --shelf: then delete all but the newest N backups on the shelf.",
)
@shelf_root_option
@json_option
@click.pass_context
def backup(
    ctx: click.Context,
    dest: Path | None,
    to_shelf: bool,
    keep: int | None,
    shelf_root: str | None,
) -> None:
    """Snapshot all registry metadata to a file, while writers keep writing.

    SQLite is copied with its online backup API, PostgreSQL read in one
    repeatable-read transaction. `modelreg backup verify FILE` checks a backup;
    `modelreg backup --shelf --keep 14` keeps the last 14 beside the artifacts
    (`modelreg backup list` shows them).
    """
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.ensure_object(CliState)
    to_shelf = to_shelf or shelf_root is not None
    if dest is not None and to_shelf:
        raise click.UsageError("give either --to FILE or --shelf, not both")
    if keep is not None and not to_shelf:
        raise click.UsageError("--keep prunes the shelf: use it with --shelf")
    if to_shelf:
        _backup_to_shelf(state, shelf_root, keep)
        return
    if dest is None:
        raise click.UsageError("give the file to write: modelreg backup --to FILE (or --shelf)")
    from registry.backup import backup as take

    info = take(state.settings().registry_url, dest)
    click.echo(
        f"backed up {info.rows:,} rows of {sum(1 for n in info.tables.values() if n)} "
        f"tables ({info.source}, schema {info.schema}) to {dest}"
    )


def _backup_to_shelf(state: CliState, shelf_root: str | None, keep: int | None) -> None:
    from registry.backup_shelf import take
    from registry.errors import InvalidInput

    if keep is not None and keep < 1:
        raise InvalidInput(f"--keep must be at least 1, not {keep}")
    shelf = _shelf(state, shelf_root)
    with tempfile.TemporaryDirectory(prefix="modelreg-backup-") as work:
        entry = shelf.put(take(state.settings().registry_url, Path(work)))
    pruned = shelf.prune(keep, protect=entry.name) if keep is not None else []
    if state.json:
        from registry.cli.render import emit_json

        emit_json({"entry": entry, "pruned": pruned})
        return
    line = f"shelved {entry.name} ({_size(entry.size)}, seq {entry.seq}) at {shelf.uri}"
    if pruned:
        line += f"; pruned {len(pruned)}: {', '.join(pruned)}"
    click.echo(line)


@backup.command("list")
@shelf_root_option
@json_option
@pass_state
def backup_list(state: CliState, shelf_root: str | None) -> None:
    """The backups on the shelf, newest first: name, size, taken at, registry seq."""
    from registry.cli.render import emit_json, print_table, when

    shelf = _shelf(state, shelf_root)
    entries = shelf.entries()
    if state.json:
        emit_json(entries)
        return
    print_table(
        ["name", "size", "taken", "seq"],
        ([e.name, _size(e.size), when(e.created_at), str(e.seq)] for e in entries),
        empty=f"no backups on the shelf at {shelf.uri} (modelreg backup --shelf)",
    )


@backup.command("verify")
@click.argument("source", metavar="FILE|ENTRY")
@shelf_root_option
@pass_state
def verify(state: CliState, source: str, shelf_root: str | None) -> None:
    """Check a backup (a file, or a shelf entry): every table against its checksum."""
    from registry.backup import verify as check

    with _backup_file(state, source, False, shelf_root) as (path, shown):
        info = check(path)
    click.echo(
        f"{shown}: ok, {info.rows:,} rows, schema {info.schema}, from {info.source} "
        f"at {info.created_at.isoformat(timespec='seconds')}"
    )


@click.command()
@click.argument("source", metavar="FILE|ENTRY", required=False)
@click.option("--latest", is_flag=True, help="Restore the newest backup on the shelf.")
@shelf_root_option
@click.option(
    "--registry",
    "registry_url",
    metavar="URL",
    help="The empty registry to restore into (sqlite:///… or postgresql://…; default: the "
    "global --registry, $MODELREG_URL).",
)
@pass_state
def restore(
    state: CliState,
    source: str | None,
    latest: bool,
    shelf_root: str | None,
    registry_url: str | None,
) -> None:
    """Restore a backup into an empty registry (either backend); refuses a non-empty one.

    FILE is a backup file; ENTRY a backup on the shelf (`modelreg backup list`), or
    --latest for the newest one there. Shelved bytes are checked against the size and
    sha256 they were shelved with before anything is loaded.
    """
    from registry.backup import restore as load
    from registry.errors import InvalidInput

    url = registry_url or state.settings().registry_url
    if url.startswith(("http://", "https://")):
        raise InvalidInput("restore writes a database: give sqlite:///… or postgresql://…")
    with _backup_file(state, source, latest, shelf_root) as (path, shown):
        info = load(path, url)
    taken = info.created_at.isoformat(timespec="seconds")
    click.echo(f"restored {info.rows:,} rows from {shown} (taken {taken})")
    from registry.cli.check import check_restored

    check_restored(url)


@contextmanager
def _backup_file(
    state: CliState, source: str | None, latest: bool, shelf_root: str | None
) -> Iterator[tuple[Path, str]]:
    """The backup to read, as a local file, and how to name it to a person: the file
    itself, or a shelf entry downloaded (and checked) into a temporary folder."""
    from registry.backup_shelf import fetch, is_entry_name
    from registry.errors import InvalidInput

    if latest == (source is not None):
        raise click.UsageError("give a backup FILE, a shelf ENTRY name, or --latest")
    if source is not None:
        path = Path(source)
        if path.is_file():
            yield path, source
            return
        if not is_entry_name(path.name) or path.name != source:
            raise InvalidInput(f"no backup file {source} (nor a shelf entry of that name)")
    shelf = _shelf(state, shelf_root)
    with tempfile.TemporaryDirectory(prefix="modelreg-restore-") as work:
        path, entry = fetch(shelf, source, Path(work))
        yield path, _shown(shelf, entry)


def _shown(shelf: Shelf, entry: ShelfEntry) -> str:
    return f"{entry.name} on the shelf at {shelf.uri}"


def _size(size: int) -> str:
    for power, unit in ((3, "GB"), (2, "MB"), (1, "kB")):
        if size >= 1000**power:
            return f"{size / 1000**power:.1f} {unit}"
    return f"{size} B"
