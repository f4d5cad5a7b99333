"""``modelreg backup`` and ``modelreg restore``: the registry's metadata in one file.

A backup is taken online (writers keep writing) and is consistent; it restores into
an empty registry of either backend. Artifact bytes are not in it: they are in the
artifact store, backed up on their own.
"""

from __future__ import annotations

from pathlib import Path

import click

from registry.cli.state import CliState, pass_state


@click.group(invoke_without_command=True)
@click.option(
    "--to",
    "dest",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file to write (a tar: a manifest with checksums, and every table).",
)
@click.pass_context
def backup(ctx: click.Context, dest: Path | None) -> None:
    """Snapshot all registry metadata to a file, while writers keep writing.

    SQLite is copied with its online backup API, PostgreSQL read in one
    repeatable-read transaction. `modelreg backup verify FILE` checks a backup.
    """
    if ctx.invoked_subcommand is not None:
        return
    if dest is None:
        raise click.UsageError("give the file to write: modelreg backup --to FILE")
    from registry.backup import backup as take

    state = ctx.ensure_object(CliState)
    info = take(state.settings().registry_url, dest)
    click.echo(
        f"backed up {info.rows:,} rows of {sum(1 for n in info.tables.values() if n)} "
        f"tables ({info.source}, schema {info.schema}) to {dest}"
    )


@backup.command("verify")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify(path: Path) -> None:
    """Check a backup: every table against its checksum and row count."""
    from registry.backup import verify as check

    info = check(path)
    click.echo(
        f"{path}: ok, {info.rows:,} rows, schema {info.schema}, from {info.source} "
        f"at {info.created_at.isoformat(timespec='seconds')}"
    )


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--registry",
    "registry_url",
    metavar="URL",
    help="The empty registry to restore into (sqlite:///… or postgresql://…; default: the "
    "global --registry, $MODELREG_URL).",
)
@pass_state
def restore(state: CliState, path: Path, registry_url: str | None) -> None:
    """Restore a backup into an empty registry (either backend); refuses a non-empty one."""
    from registry.backup import restore as load
    from registry.errors import InvalidInput

    url = registry_url or state.settings().registry_url
    if url.startswith(("http://", "https://")):
        raise InvalidInput("restore writes a database: give sqlite:///… or postgresql://…")
    info = load(path, url)
    taken = info.created_at.isoformat(timespec="seconds")
    click.echo(f"restored {info.rows:,} rows from {path} (taken {taken})")
