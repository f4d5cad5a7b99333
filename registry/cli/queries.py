"""Read commands across versions: search, lineage impact and diff."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from registry.models import LineageHit


@click.command()
@click.argument("filter_text", metavar="FILTER")
@click.option(
    "--limit",
    type=click.IntRange(1, 10_000),
    metavar="N",
    help="At most N versions (default: the filter's limit, else 100).",
)
@click.option(
    "--offset", type=click.IntRange(0), default=0, metavar="N", help="Skip the first N matches."
)
@json_option
@pass_state
def search(state: CliState, filter_text: str, limit: int | None, offset: int) -> None:
    """Versions matching a filter, newest first.

    \b
    Example: modelreg search "metrics.auc > 0.85 and tags.team = 'payments'"
    Fields: name, version, stage, alias, dataset, code.commit, created_at,
    created_by, tags.K, metrics.K, params.K; and, or, parentheses, order by, limit.
    """
    from registry.cli.render import emit_json, pairs, print_table, when

    found = state.store().search(filter_text, limit=limit, offset=offset)
    if state.json:
        emit_json(found)
        return
    print_table(
        ["model", "version", "stage", "aliases", "created", "metrics"],
        (
            [
                v.name,
                str(v.version),
                v.stage.value,
                ", ".join(v.aliases) or "-",
                when(v.created_at),
                pairs(v.metrics),
            ]
            for v in found
        ),
        empty="no versions match",
    )


@click.group()
@json_option
def lineage() -> None:
    """What was trained on what."""


@lineage.command()
@click.option("--dataset", metavar="D[@V|@LO..HI]", help="A dataset, a version or a range.")
@click.option("--pipeline", metavar="P", help="A feature pipeline version.")
@click.option("--commit", metavar="C", help="A code commit (a prefix is enough).")
@click.option("--all", "every_hit", is_flag=True, help="List every version, not only live ones.")
@json_option
@pass_state
def impact(
    state: CliState,
    dataset: str | None,
    pipeline: str | None,
    commit: str | None,
    every_hit: bool,
) -> None:
    """Versions that used a dataset, pipeline or commit: the live ones first.

    Live: in Production, under a protected alias or bound to an app release
    (the "live" column says which). Then a count of the others; --all lists
    them too. --json always lists every version, live ones first.
    """
    from registry.cli.render import stream_json, stream_table
    from registry.store.pages import impact_pages

    if sum(x is not None for x in (dataset, pipeline, commit)) != 1:
        raise click.UsageError("give exactly one of --dataset, --pipeline or --commit")
    pages = impact_pages(state.store(), dataset=dataset, pipeline=pipeline, commit=commit)
    if state.json:
        stream_json(pages)
        return
    first = next(pages, [])  # read before the table: its empty line depends on it
    every = itertools.chain([first], pages)
    rest = _Rest()
    shown = every if every_hit else rest.live_only(every)
    stream_table(
        ["model", "version", "stage", "live", "datasets", "pipeline", "commit"],
        (
            (
                [
                    h.name,
                    str(h.version),
                    h.stage.value,
                    "; ".join(h.why_live) or "-",
                    ", ".join(h.datasets) or "-",
                    h.feature_pipeline or "-",
                    h.code_commit or "-",
                ]
                for h in page
            )
            for page in shown
        ),
        empty="no live version used it" if first else "no versions used it",
    )
    if rest.count:
        more = f"{rest.count:,} more version{'s' if rest.count > 1 else ''}"
        click.echo(f"and {more} used it (--all lists them)")


class _Rest:
    """Counts the hits that are not live while passing the live ones on."""

    def __init__(self) -> None:
        self.count = 0

    def live_only(self, pages: Iterable[list[LineageHit]]) -> Iterator[list[LineageHit]]:
        """The live hits of each page; the rest (after them: live ones come first) are
        read to the end only to be counted."""
        for page in pages:
            live = [h for h in page if h.live]
            self.count += len(page) - len(live)
            if live:
                yield live


@lineage.command()
@click.argument("subject_id", metavar="ID", required=False)
@click.option("--key", metavar="KEY", help="The subject's key (64 hex) instead of its id.")
@json_option
@pass_state
def subject(state: CliState, subject_id: str | None, key: str | None) -> None:
    """Where data subject ID went: datasets, models trained on them, what serves now.

    ID is keyed with the registry secret here ('-' reads it from stdin); only
    the key is sent, and the id is never printed back. Also lists the
    subject's erasure requests.
    """
    from registry.cli.erasure import erasure_pages, subject_from
    from registry.cli.render import emit_json, plain

    store = state.store()
    found = store.subject_lineage(subject_from(state, subject_id, key))
    requests = [r for page in erasure_pages(store) for r in page if r.subject == found.subject]
    if state.json:
        emit_json({**plain(found), "erasures": plain(requests)})
        return
    from registry.cli.erasure import print_subject_lineage

    print_subject_lineage(found, requests)


@click.command()
@click.argument("name")
@click.argument("v1", metavar="V1")
@click.argument("v2", metavar="V2")
@json_option
@pass_state
def diff(state: CliState, name: str, v1: str, v2: str) -> None:
    """What changes from version V1 to V2 of NAME.

    Metric deltas, signature (features added, removed, retyped, reordered),
    params, tags, lineage and environment. V1 and V2 are numbers, stages
    (production, staging), latest or aliases.
    """
    from registry.cli.pages import print_diff
    from registry.cli.render import emit_json
    from registry.cli.views import resolve_ref
    from registry.diff import diff_versions

    store = state.store()
    a = store.get_version(name, resolve_ref(store, name, v1))
    b = store.get_version(name, resolve_ref(store, name, v2))
    result = diff_versions(a, b)
    if state.json:
        emit_json(result)
    else:
        print_diff(result)
