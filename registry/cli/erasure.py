"""``modelreg erasure``: erasure obligations for a data subject, and how each is closed.

A subject's id is keyed here with the registry secret (``registry.subjects``); only
the key reaches the registry. No command prints the raw id back: the user typed it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from collections.abc import Iterator

    from registry.models import ErasureItem, ErasureRequest, SubjectLineage
    from registry.store.base import RegistryStore

ID_HELP = "The subject's id as the data holds it ('-' reads it from stdin, off the command line)."
KEY_OPTION = click.option(
    "--key", metavar="KEY", help="The subject's key (64 hex) instead of its id."
)


def subject_from(state: CliState, subject_id: str | None, key: str | None) -> str:
    """The subject key: ``key`` as given, or ``subject_id`` keyed with the registry secret."""
    from registry.models import check_subject_key

    if (subject_id is None) == (key is None):
        raise click.UsageError("give the subject's ID or --key KEY (one of them)")
    if key is not None:
        return check_subject_key(key.strip().lower())
    assert subject_id is not None
    from registry.subjects import load_secret, subject_key

    if subject_id == "-":
        subject_id = sys.stdin.readline()
    return subject_key(load_secret(state.settings()), subject_id)


def short(key: str) -> str:
    """A subject key as tables show it: enough to tell keys apart, not to copy."""
    return f"{key[:12]}…"


@click.group()
@json_option
def erasure() -> None:
    """Erasure requests for a data subject: record, list, justify."""


@erasure.command("request")
@click.argument("subject_id", metavar="ID", required=False)
@KEY_OPTION
@click.option("--reason", required=True, help="Why (the ticket, the legal basis).")
@json_option
@pass_state
def request(state: CliState, subject_id: str | None, key: str | None, reason: str) -> None:
    """Record an erasure obligation for subject ID.

    Every live version trained on the subject's data (Production, a protected
    alias, an app release) is flagged "retrain required" until a retrain on data
    without the subject closes it, or `modelreg erasure justify` records why not.
    """
    from registry.cli.render import emit_json

    subject = subject_from(state, subject_id, key)
    found = state.store().request_erasure(subject, reason=reason)
    if state.json:
        emit_json(found)
        return
    click.echo(f"erasure request #{found.id} for subject {short(found.subject)}")
    if not found.items:
        click.echo("no live version was trained on the subject's data: nothing to retrain")
    for item in found.items:
        click.echo(f"  {item.name} version {item.version}: {item.state}")


@erasure.command("list")
@click.option("--open", "open_only", is_flag=True, help="Only requests with a version to retrain.")
@click.option("--model", metavar="NAME", help="Only the items of this model.")
@json_option
@pass_state
def list_(state: CliState, open_only: bool, model: str | None) -> None:
    """Erasure requests, oldest first, one line per flagged version."""
    from registry.cli.render import stream_json, stream_table

    pages = erasure_pages(state.store(), open_only=open_only, model=model)
    if state.json:
        stream_json(pages)
        return
    stream_table(
        ["request", "requested", "by", "subject", "model", "version", "state", "closed", "reason"],
        ([row for r in page for row in _rows(r)] for page in pages),
        empty="no open erasure requests" if open_only else "no erasure requests",
    )


def erasure_pages(
    store: RegistryStore, *, open_only: bool = False, model: str | None = None
) -> Iterator[list[ErasureRequest]]:
    """Every erasure request (of the filters), oldest first, a page at a time."""
    from registry.store.pages import walk

    return walk(
        lambda n, after: store.erasures(open_only=open_only, model=model, limit=n, after=after),
        _request_id,
        0,
    )


def _request_id(request: ErasureRequest) -> int:
    return request.id


def _rows(found: ErasureRequest) -> list[list[str]]:
    from registry.cli.render import when

    head = [f"#{found.id}", when(found.requested_at), found.requested_by, short(found.subject)]
    if not found.items:
        return [[*head, "-", "-", "nothing live", "-", found.reason]]
    return [[*head, i.name, str(i.version), i.state, _closed(i), found.reason] for i in found.items]


def _closed(item: ErasureItem) -> str:
    from registry.cli.render import when

    if item.state == "retrained":
        return f"by v{item.closed_by_version} {when(item.closed_at)}"
    if item.state == "justified":
        return f"{item.closed_by} {when(item.closed_at)}: {item.justification}"
    return "-"


@erasure.command("justify")
@click.argument("request_id", metavar="REQUEST", type=click.IntRange(min=1))
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--reason", required=True, help="Why this version may keep serving.")
@json_option
@pass_state
def justify(state: CliState, request_id: int, name: str, version: int, reason: str) -> None:
    """Close the item of VERSION of NAME in erasure REQUEST with a recorded reason."""
    from registry.cli.render import emit_json

    found = state.store().justify_erasure(request_id, name, version, reason=reason)
    if state.json:
        emit_json(found)
        return
    state_now = "open" if found.open else "closed"
    click.echo(f"erasure request #{found.id}: {name} version {version} justified ({state_now})")


# ---------------------------------------------------------------- lineage subject


def print_subject_lineage(found: SubjectLineage, requests: list[ErasureRequest]) -> None:
    """``modelreg lineage subject``'s three answers, then the subject's erasure requests."""
    from registry.cli.render import print_table, when

    click.echo(f"subject {short(found.subject)}")
    if not found.datasets:
        click.echo(
            "no recorded dataset version holds this subject (manifests are keyed with the "
            "registry secret: a different MODELREG_SUBJECT_SECRET finds nothing)"
        )
    else:
        held = ", ".join(f"{d.dataset}@{d.version}" for d in found.datasets)
        click.echo(f"in {len(found.datasets)} dataset versions: {held}")
    print_table(
        ["model", "version", "stage", "live now", "datasets", "retrain required"],
        (
            [
                h.name,
                str(h.version),
                h.stage.value,
                "; ".join(h.why_live) or "no",
                ", ".join(h.datasets) or "-",
                ", ".join(f"#{n}" for n in h.retrain_required) or "-",
            ]
            for h in found.versions
        ),
        empty="no model version was trained on them",
    )
    live = [h for h in found.versions if h.live]
    if found.versions:
        click.echo(f"live now: {len(live)} of {len(found.versions)} versions")
    for r in requests:
        status = "open" if r.open else "closed"
        click.echo(f"erasure request #{r.id} ({status}) {when(r.requested_at)} by {r.requested_by}")
