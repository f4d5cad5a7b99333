"""How output looks: JSON for machines, Rich tables and aligned lines for people.

Times are shown in UTC, ISO 8601, to the second. Rich is imported only when a
table is printed; user data is never read as Rich markup.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from datetime import datetime

    from pydantic import BaseModel
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
    """``2026-11-20T02:14:00Z``. (``isoformat`` rather than ``strftime``: ten times
    faster, which shows when a history of 100,000 events is printed.)"""
    if moment is None:
        return NONE
    from datetime import UTC

    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "Z"


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
    """One event in a few words: what moved, from where to where.

    A refusal reads ``REFUSED v3 -> Production (promotion gate): why; why``, a forced
    change ends in ``FORCED (skipped replicas, health, …)``.
    """
    text = _what(event)
    details = event.details
    if details.forced:
        skipped = ", ".join(details.skipped) or "gates"
        text += f" FORCED (skipped {skipped})"
    if details.invalidate:
        text += " (invalidate now)"
    return text


def _what(event: Event) -> str:
    old, new = event.from_value or NONE, event.to_value or NONE
    version = f"v{event.version}" if event.version is not None else ""
    match event.kind:
        case "model.created":
            return "model created"
        case "version.registered":
            return f"version {event.version} registered"
        case "stage":
            return f"version {event.version}: {old} -> {new}"
        case "alias":
            return f"alias {event.subject}: {old} -> {new}"
        case "rollback":
            return f"rollback of Production: version {old} -> {new}"
        case "refused":
            what = f"{version} -> {event.subject}" if version else f"{event.subject} removal"
            gate = event.details.gate or "release"
            reasons = "; ".join(event.details.reasons) or "no reason given"
            return f"REFUSED {what} ({gate} gate): {reasons}"
        case "policy":
            if event.from_value is None:
                return f"policy version {new} set"
            return f"policy version {old} -> {new}"
        case "approval":
            return f"{version} approved"
        case "binding":
            if new.startswith("follow "):
                return f"{event.subject} follows {event.model}@{new.removeprefix('follow ')}"
            return f"{event.subject} pinned to {event.model} {new}"
        case "model.renamed":
            return f"model renamed: {old} -> {new}"
        case "version.deleted":
            return f"version {event.version} deleted (was {old})"
        case "model.deleted":
            return "model deleted (its history stays)"
        case "artifact.collected":
            sha = (event.details.sha256 or "")[:12]
            part = f", a file of bundle {event.from_value[:12]}" if event.from_value else ""
            return f"version {event.version} bytes {sha} removed from {event.subject}{part}"
        case "tags" if event.version is None:
            return f"model tag {event.subject}: {old} -> {new}"
    target = f"version {event.version} " if event.version is not None else ""
    return f"{target}{event.kind} changed"


def who(event: Event) -> str:
    """The actor, and the flow run behind the change when there was one:
    ``root@vm via deployment rollback/on-call (run crafty-fox)``."""
    origin = event.details.origin
    return event.actor if origin is None else f"{event.actor} via {origin.describe()}"


def significant(number: float) -> str:
    """A metric to 4 significant digits: 0.9123, 12.35, 1.235e+05."""
    return f"{number:.4g}"


def key_metrics_text(
    metrics: dict[str, float], keys: Sequence[str], *, few: int = 3, name_width: int = 20
) -> str:
    """``auc=0.912, f1=0.79`` for the policy's key metrics (``keys``), or, when the
    policy names none, the first ``few`` metrics by name; long names are cut short."""
    chosen = [k for k in keys if k in metrics] if keys else sorted(metrics)[:few]
    return ", ".join(f"{_cut(k, name_width)}={significant(metrics[k])}" for k in chosen) or NONE


def print_pointer_change(change: PointerChange, *, nothing: str) -> None:
    if not change.events:
        click.echo(f"{change.name}: nothing changed, {nothing} (generation {change.generation})")
        return
    for event in change.events:
        click.echo(f"{change.name}: {describe_event(event)}")
    click.echo(f"{change.name}: generation {change.generation}")


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    empty: str,
    width: int | None = None,
    shrink: Sequence[str] = (),
) -> None:
    """A table, one line per row. With ``width``, it fits that many columns even when
    piped: cells of the ``shrink`` columns (the first gives way first) end in ``…``."""
    cells = [list(row) for row in rows]
    if not cells:
        click.echo(empty)
        return
    if width is not None:
        cells = _fit(columns, cells, width, shrink)
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in cells:
        table.add_row(*row)
    console = _console()
    with console.capture() as captured:
        console.print(table)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


_GAP = 3  # between two columns of a SIMPLE_HEAD table: padding, divider, padding


def _fit(
    columns: Sequence[str], rows: list[list[str]], width: int, shrink: Sequence[str]
) -> list[list[str]]:
    """Narrow the ``shrink`` columns until the table is ``width`` wide: first each of
    them, in order, down to ``_NARROW`` characters, then down to its header."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    cuttable = [columns.index(c) for c in shrink if c in columns]
    excess = sum(widths) + _GAP * (len(columns) - 1) - width
    for narrow in (_NARROW, 0):
        for i in cuttable:
            floor = max(len(columns[i]), narrow)
            cut = max(0, min(excess, widths[i] - floor))
            widths[i] -= cut
            excess -= cut
    return [
        [_cut(cell, widths[i]) if i in cuttable else cell for i, cell in enumerate(row)]
        for row in rows
    ]


_NARROW = 12


def _cut(text: str, limit: int) -> str:
    """``text`` in ``limit`` characters: a list (``a, b, c``) loses whole items first."""
    if len(text) <= limit:
        return text
    end = text.rfind(", ", 0, limit - 1)
    if end >= limit // 2:
        return text[:end] + ", …"
    return text[: max(limit - 1, 0)] + "…"


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


# ---------------------------------------------------------------- streamed output (#13)
# Lists with no bound (a history of 100,000 events, ``lineage impact --all``) are written
# page by page as the store returns them: the widths come from the first page and never
# change, so memory stays flat and the first lines appear at once. Rich is not used here:
# it needs every row before it prints one.

_STREAM_GAP = " " * _GAP


def stream_table(
    columns: Sequence[str],
    pages: Iterable[Iterable[Sequence[str]]],
    *,
    empty: str,
    width: int | None = None,
    shrink: Sequence[str] = (),
) -> int:
    """A table in the shape ``print_table`` draws, one page at a time; the number of rows.

    Column widths are the first page's (fitted to ``width`` as ``print_table`` does). A
    later cell that is wider pushes the rest of its line right; the last column is never
    padded, so a long reason or change costs no trailing blanks."""
    widths: list[int] = []
    cuttable: list[int] = []
    rows = 0
    for page in pages:
        cells = [list(row) for row in page]
        if not cells:
            continue
        if not widths:
            if width is not None:
                cells = _fit(columns, cells, width, shrink)
                cuttable = [columns.index(c) for c in shrink if c in columns]
            widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
            header = _STREAM_GAP.join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
            rule = "─" * (sum(widths) + _GAP * (len(widths) - 1))
            write_text(f"{header.rstrip()}\n{rule}\n")
        lines = [
            _STREAM_GAP.join(
                (_cut(cell, widths[i]) if i in cuttable else cell).ljust(widths[i])
                for i, cell in enumerate(row)
            ).rstrip()
            for row in cells
        ]
        write_text("\n".join(lines) + "\n")
        rows += len(cells)
    if not rows:
        write_text(f"{empty}\n")
    return rows


def stream_json(
    pages: Iterable[Sequence[BaseModel]],
    *,
    key: str | None = None,
    cursor: Callable[[], str | None] | None = None,
) -> None:
    """A JSON array of the pages' items, each written as it comes, one per line.

    With ``key`` it is ``{"<key>": [...], "next_cursor": ...}``: ``cursor`` is asked for
    the next cursor once every item is out (paging finds out only at the end whether
    more exist)."""
    opening = f'{{"{key}": [' if key else "["
    first = True  # nothing is written before the first page is read: it may fail
    for page in pages:
        if not page:
            continue
        items = ",\n".join(item.model_dump_json() for item in page)
        write_text((f"{opening}\n" if first else ",\n") + items)
        first = False
    if first:
        write_text(opening)
    write_text("\n]" if not first else "]")
    if key:
        import json

        write_text(f', "next_cursor": {json.dumps(cursor() if cursor else None)}}}')
    write_text("\n")


def write_text(text: str) -> None:
    """Straight to stdout's buffer: ``click.echo`` would flush at every line. The entry
    point flushes at the end, and a reader that went away ends it quietly."""
    sys.stdout.write(text)


def hint(text: str) -> None:
    """A line for the person, not the pipe (``… earlier events exist``): on stderr, after
    whatever stdout holds so far, so the two stay in order on one terminal or file."""
    sys.stdout.flush()
    click.echo(text, err=True)
