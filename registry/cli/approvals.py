"""``modelreg approve``: a person's sign-off on Staging -> Production.

An approval is a check recorded by the approver (``MODELREG_USER``; on a registry
server, the token's name); the promotion gate counts the distinct approvers other
than the version's registrant against the policy's ``approvals.required``.
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
    """Approve VERSION of NAME for Production, as yourself ($MODELREG_USER, or the token).

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
    resumed = after_approval(state, name, version, reason)
    if state.json:
        emit_json(
            {
                "name": name,
                "version": version,
                "approval": approval,
                "approvers": approvers,
                "required": required,
                "resumed_run": resumed,
            }
        )
        return
    needed = f"{len(approvers)} of {required} required" if required else "none required"
    click.echo(
        f"{name}: v{version} approved by {approval.recorded_by} "
        f"(approvals: {needed}; {', '.join(approvers)})"
    )
    if resumed is not None:
        click.echo(f"resumed the release run waiting for it ({resumed})")


def after_approval(state: CliState, name: str, version: int, reason: str) -> str | None:
    """Resume the release run that waits for this approval, if one does; its name or id.

    A waiting run logged an ``approval requested`` event with itself as the origin.
    The approval is already recorded (the registry, not the resume, is what the run's
    gate counts), so a run that cannot be resumed from here (no Prefect installed, its
    API unreachable, the run no longer paused) still finds it when it wakes. Prefect
    is imported only when a run waits.
    """
    store = state.store()
    from registry.store.pages import model_events

    waiting = [
        e
        for e in model_events(store, name, kinds=("approval",))
        if e.subject == "requested" and e.version == version
    ]
    origin = waiting[-1].details.origin if waiting else None
    if origin is None or origin.run_id is None:
        return None
    try:
        from uuid import UUID

        from prefect.flow_runs import resume_flow_run
    except ImportError:
        return None
    actor = store.actor
    try:
        resume_flow_run(UUID(origin.run_id), run_input={"approver": actor, "reason": reason})
    except Exception as exc:  # the run's Prefect API is not ours to fail on
        click.echo(
            f"note: could not resume run {origin.run_name or origin.run_id}: {exc}", err=True
        )
        return None
    return origin.run_name or origin.run_id
