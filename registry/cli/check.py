"""``modelreg check``: a full consistency check of the registry database.

Exit codes: 0 when every invariant holds; 1 when the check ran and found violations
(one line each on stdout, then one summary line on stderr), as ``diff`` and ``cmp``
answer 1 for "differences found". A check that cannot run keeps the codes of
``registry.cli.errors`` (2 for an http:// registry or a bad URL, 5 for a database
that is unreachable), so a script tells "inconsistent" from "could not look".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from registry.consistency import ConsistencyReport

INCONSISTENT = 1


@click.command()
@json_option
@pass_state
def check(state: CliState) -> int:
    """Check every invariant of the registry database (read-only, safe while it serves).

    Event numbering, foreign keys, stages and aliases against the event log, one
    Production version per model, generations, rollback targets, tombstones, token
    hashes. Exit 0 if consistent, 1 with one line per violation if not.
    """
    from registry.consistency import check as run

    report = run(state.settings().registry_url)
    return show(report, as_json=state.json)


def show(report: ConsistencyReport, *, as_json: bool, prefix: str = "") -> int:
    """Print a report (violations on stdout, the verdict last); its exit code."""
    if as_json:
        from registry.cli.render import emit_json

        emit_json(report.to_dict())
    elif report.ok:
        click.echo(f"{prefix}{report.summary}")
    else:
        for violation in report.violations:
            click.echo(str(violation))
        click.echo(f"error: {prefix}{report.summary}", err=True)
    return 0 if report.ok else INCONSISTENT


def check_restored(url: str) -> None:
    """After ``modelreg restore``: check the restored registry and say so; exit 1 (the
    rows stay loaded, to be looked at) if the backup held an inconsistent registry."""
    from registry.consistency import check as run

    code = show(run(url), as_json=False, prefix="the restored registry is ")
    if code:
        raise click.exceptions.Exit(code)
