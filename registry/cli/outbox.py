"""``modelreg drain``: deliver the registrations ``register`` queued while the registry was down.

The outbox (``$MODELREG_HOME/outbox.db``) is delivered to the registry this command
points at (``--registry``, ``$MODELREG_URL``), each entry under the idempotency key
it was queued with, so a delivery the registry already took returns the same
version. Exit 0 when nothing is left to deliver; 5 (one line naming why) when the
registry is still unreachable and entries stay queued; 4 when the registry refused
some entries for good (they are kept in the outbox, marked rejected).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from registry.outbox import DrainReport


@click.command()
@json_option
@pass_state
def drain(state: CliState) -> None:
    """Deliver the registrations queued while the registry was unreachable."""
    from registry.cli.render import emit_json
    from registry.errors import Conflict, RegistryUnavailable
    from registry.outbox import Outbox, drain_pending
    from registry.subjects import deliver_pending

    settings = state.settings()
    deliver_pending(settings)  # the data's manifests first, as the drain flow does
    report = drain_pending(settings)
    outbox = Outbox(settings.outbox_path)
    rejected = [
        (key, error)
        for key, error in report.failed
        if (entry := outbox.get(key)) is not None and entry.state == "rejected"
    ]
    if state.json:
        emit_json(_as_json(report, rejected, str(settings.outbox_path)))
    else:
        _print(report, rejected, str(settings.outbox_path))
    if report.unavailable is not None:
        raise RegistryUnavailable(
            f"{report.remaining} registration(s) still queued in {settings.outbox_path}: "
            f"{report.unavailable}"
        )
    if rejected:
        raise Conflict(
            f"the registry refused {len(rejected)} queued registration(s) for good "
            f"(kept in {settings.outbox_path} as rejected): "
            + "; ".join(f"{key}: {error}" for key, error in rejected)
        )


def _as_json(
    report: DrainReport, rejected: list[tuple[str, str]], outbox: str
) -> dict[str, object]:
    return {
        "outbox": outbox,
        "delivered": [
            {"key": key, "name": name, "version": version}
            for key, name, version in report.delivered
        ],
        "rejected": [{"key": key, "error": error} for key, error in rejected],
        "remaining": report.remaining,
        "unavailable": report.unavailable,
    }


def _print(report: DrainReport, rejected: list[tuple[str, str]], outbox: str) -> None:
    for key, name, version in report.delivered:
        click.echo(f"delivered {name} version {version} (key {key})")
    for key, _error in rejected:
        click.echo(f"rejected {key} (see the error below)")
    if report.unavailable is None and not report.remaining:
        delivered = len(report.delivered)
        click.echo(
            f"outbox {outbox} is empty ({delivered} delivered now)"
            if delivered or rejected
            else f"nothing queued in {outbox}"
        )
    else:
        click.echo(f"{report.remaining} still queued in {outbox}")
