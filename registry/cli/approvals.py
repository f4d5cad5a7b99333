"""``modelreg approve``: a person's sign-off on Staging -> Production.

An approval is a check recorded by the approver (``MODELREG_USER``); the promotion
gate counts the distinct approvers other than the version's registrant against the
policy's ``approvals.required``.
"""

from __future__ import annotations

import click

from registry.cli.state import CliState, json_option, pass_state


@click.command()
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--reason", required=True, help="Why it may ship; kept with the approval.")
@json_option
@pass_state
def approve(state: CliState, name: str, version: int, reason: str) -> None:
    """Approve VERSION of NAME for Production, as yourself ($MODELREG_USER).

    The registrant's own approval is refused (exit 4); the policy says how many
    are needed ('modelreg policy show NAME').
    """
    from registry.cli.render import emit_json
    from registry.release.checks import CheckKind

    store = state.store()
    approval = store.approve(name, version, reason=reason)
    registrant = store.get_version(name, version).created_by
    approvers = list(
        dict.fromkeys(
            c.recorded_by
            for c in store.checks(name, version, CheckKind.APPROVAL.value)
            if c.passed and c.recorded_by != registrant
        )
    )
    required = store.get_policy(name).policy.approvals.required
    after_approval(state, name, version)
    if state.json:
        emit_json(
            {
                "name": name,
                "version": version,
                "approval": approval,
                "approvers": approvers,
                "required": required,
            }
        )
        return
    needed = f"{len(approvers)} of {required} required" if required else "none required"
    click.echo(
        f"{name}: v{version} approved by {approval.recorded_by} "
        f"(approvals: {needed}; {', '.join(approvers)})"
    )


def after_approval(state: CliState, name: str, version: int) -> None:
    """What happens once an approval is recorded, beyond the record itself.

    Nothing yet. The hook for resuming a retrain or promote flow run that waits
    for this approval (Prefect's wait-for-input); whoever fills it in keeps the
    Prefect import inside this function, so the CLI stays light.
    """
    return None
