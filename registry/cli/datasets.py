"""``modelreg dataset``: what the registry knows about dataset versions (their subjects).

``dataset manifest`` is the path for a team without the pipeline: it keys the ids
of a file with the registry secret, stores the manifest artifact and records it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from registry.cli.state import CliState, json_option, pass_state


@click.group()
@json_option
def dataset() -> None:
    """Dataset versions: record and show their subject manifests."""


@dataset.command("manifest")
@click.argument("ref", metavar="NAME@VERSION")
@click.option(
    "--subjects",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The subject ids: one per line, or a .csv/.parquet file with --column.",
)
@click.option("--column", metavar="COL", help="The id column of a .csv or .parquet file.")
@json_option
@pass_state
def manifest(state: CliState, ref: str, path: Path | None, column: str | None) -> None:
    """Record which data subjects dataset version NAME@VERSION holds (--subjects FILE).

    Without --subjects, show the manifest recorded for it. Ids are keyed with
    the registry secret here; only the keys leave this machine. Blank ids are
    skipped (and counted).
    """
    from registry.cli.render import emit_json, when

    name, version = split_ref(ref)
    store = state.store()
    if path is None:
        if column is not None:
            raise click.UsageError("--column needs --subjects FILE")
        found = store.subject_manifest(name, version)
    else:
        from registry.subjects import write_manifest

        ids, blank = read_ids(path, column)
        found = write_manifest(state.settings(), name, version, ids, store=store)
        if blank and not state.json:
            click.echo(f"skipped {blank} blank ids", err=True)
    if state.json:
        emit_json(found)
        return
    click.echo(
        f"{found.dataset}@{found.version}: {found.subjects:,} subjects, manifest "
        f"{found.sha256[:12]} (recorded {when(found.recorded_at)} by {found.recorded_by})"
    )


def split_ref(ref: str) -> tuple[str, str]:
    """``transactions@2026-11-01`` as its name and version."""
    from pydantic import ValidationError

    from registry.errors import InvalidInput
    from registry.models import DatasetRef, validation_message

    name, sep, version = ref.partition("@")
    if not sep:
        raise InvalidInput(f"invalid dataset version {ref!r}: expected NAME@VERSION")
    try:
        DatasetRef(name=name, version=version)
    except ValidationError as exc:
        raise InvalidInput(f"invalid dataset version {ref!r}: {validation_message(exc)}") from exc
    return name, version


def read_ids(path: Path, column: str | None) -> tuple[list[str], int]:
    """The non-blank ids in ``path``, and how many blank ones were skipped."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet") and column is None:
        raise click.UsageError(f"a {suffix} file needs --column COL (the subject id column)")
    if column is not None and suffix not in (".csv", ".parquet"):
        raise click.UsageError("--column reads a .csv or .parquet file")
    if suffix == ".parquet":
        values: Iterator[str] = _parquet_column(path, str(column))
    elif suffix == ".csv":
        values = _csv_column(path, str(column))
    else:
        values = _lines(path)
    ids: list[str] = []
    blank = 0
    for text in values:
        if text.strip():
            ids.append(text)
        else:
            blank += 1
    return ids, blank


def _lines(path: Path) -> Iterator[str]:
    from registry.errors import InvalidInput

    try:
        with path.open(encoding="utf-8") as handle:
            yield from (line.rstrip("\r\n") for line in handle)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name} is not UTF-8 text: {exc.reason}") from exc


def _csv_column(path: Path, column: str) -> Iterator[str]:
    import csv

    from registry.errors import InvalidInput

    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if column not in (reader.fieldnames or []):
                raise InvalidInput(f"{path.name} has no column {column!r}")
            yield from (row[column] or "" for row in reader)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path.name} is not UTF-8 text: {exc.reason}") from exc
    except csv.Error as exc:
        raise InvalidInput(f"could not read {path.name}: {exc}") from exc


def _parquet_column(path: Path, column: str) -> Iterator[str]:
    from registry.errors import InvalidInput

    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        raise InvalidInput(
            "reading .parquet needs pyarrow (pip install 'modelreg[pipeline]'), or give a .csv"
        ) from None
    try:
        table = pq.read_table(path, columns=[column])
    except (OSError, KeyError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInput(f"could not read column {column!r} of {path.name}: {first}") from exc
    yield from ("" if value is None else str(value) for value in table.column(0).to_pylist())
