"""How output looks: JSON for machines, Rich tables and aligned lines for people.

Times are shown in UTC, ISO 8601, to the second. Rich is imported only when a
table is printed; user data is never read as Rich markup.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from datetime import datetime

    from rich.console import Console

    from registry.models import Event, PointerChange

NONE = "-"


def emit_json(data: Any) -> None:
    """Pydantic objects (or lists and dicts of them) as stable, indented JSON."""
    import json

    click.echo(json.dumps(plain(data), indent=2, ensure_ascii=False))


def plain(data: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list | tuple):
        return [plain(item) for item in data]
    if isinstance(data, dict):
        return {key: plain(value) for key, value in data.items()}
    return data


def when(moment: datetime | None) -> str:
    if moment is None:
        return NONE
    from datetime import UTC

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def value(item: object) -> str:
    """A metric, param or tag value as a person reads it."""
    if item is None:
        return NONE
    if isinstance(item, bool):
        return "true" if item else "false"
    return str(item)


def pairs(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value(item)}" for key, item in mapping.items()) or NONE


def versions_text(numbers: Iterable[int]) -> str:
    return ", ".join(str(n) for n in numbers) or NONE


def describe_event(event: Event) -> str:
    """One event in a few words: what moved, from where to where."""
    old, new = event.from_value or NONE, event.to_value or NONE
    if event.kind == "model.created":
        return "model created"
    if event.kind == "version.registered":
        return f"version {event.version} registered"
    if event.kind == "stage":
        return f"version {event.version}: {old} -> {new}"
    if event.kind == "alias":
        return f"alias {event.subject}: {old} -> {new}"
    if event.kind == "rollback":
        return f"rollback of Production: version {old} -> {new}"
    target = f"version {event.version} " if event.version is not None else ""
    return f"{target}{event.kind} changed"


def print_pointer_change(change: PointerChange, *, nothing: str) -> None:
    if not change.events:
        click.echo(f"{change.name}: nothing changed, {nothing} (generation {change.generation})")
        return
    for event in change.events:
        click.echo(f"{change.name}: {describe_event(event)}")
    click.echo(f"{change.name}: generation {change.generation}")


def print_table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str) -> None:
    rows = [list(row) for row in rows]
    if not rows:
        click.echo(empty)
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console = _console()
    with console.capture() as captured:
        console.print(table)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def print_section(title: str, lines: Sequence[tuple[str, str]], *, empty: str = NONE) -> None:
    """A titled block of aligned ``label  value`` lines."""
    click.echo(title)
    if not lines:
        click.echo(f"  {empty}")
        return
    width = max(len(label) for label, _ in lines)
    for label, text in lines:
        click.echo(f"  {label.ljust(width)}  {text}".rstrip())


def _console() -> Console:
    from rich.console import Console

    # Piped output is not wrapped at 80 columns: a line per row is what grep wants.
    width = None if sys.stdout.isatty() else 4096
    return Console(
        file=sys.stdout, width=width, markup=False, highlight=False, emoji=False, soft_wrap=False
    )
