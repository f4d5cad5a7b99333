"""The rollback plan on a terminal: ``rollback --dry-run``, the ``models`` column and the
section of ``show NAME production``.

The plan is the store's (``RegistryStore.rollback_plan``): decided by the code the
rollback runs, so these only lay it out. Unsafe is shouted (``UNSAFE``, ``FAILED``,
``INCOMPATIBLE``) because it is what a reader at 2am must not miss.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from registry.release_models import RollbackPlan


def verdict(plan: RollbackPlan) -> str:
    """``v11 safe``, ``v11 UNSAFE``, or ``-`` when there is nothing to roll back to."""
    if plan.target is None:
        return "-"
    return f"v{plan.target} {'safe' if plan.safe else 'UNSAFE'}"


def plan_json(plan: RollbackPlan) -> dict[str, Any]:
    return plan.model_dump(mode="json")


def print_plan(plan: RollbackPlan) -> None:
    """Everything ``rollback --dry-run`` shows: the verdict first, then what it rests on."""
    from registry.cli.render import print_section, when

    print_section("rollback plan", _summary(plan))
    _print_list("problems (the rollback would be refused)", plan.problems)
    _print_list("warnings (not gated)", plan.warnings)
    if plan.target is None:
        return
    print_section(
        f"replicas of v{plan.target} (the policy's regions)",
        [(r.region, _replica(r.replica, r.error, when(r.verified_at))) for r in plan.regions],
    )
    print_section(
        "app releases bound to the model",
        [
            (r.release, f"{'compatible' if r.compatible else 'INCOMPATIBLE'}: {r.reason}")
            for r in plan.releases
        ],
        empty="none",
    )
    print_section(
        f"latest checks of v{plan.target}",
        [
            (
                f"{c.kind} {c.region or ''}".strip(),
                f"{'passed' if c.passed else 'FAILED'}  {when(c.at)}",
            )
            for c in plan.checks
        ],
        empty="none recorded",
    )


def print_target_section(plan: RollbackPlan) -> None:
    """The short form, for ``show NAME production``: target, verdict and problems."""
    from registry.cli.render import print_section

    lines = [("target", _target(plan)), ("verdict", _verdict_text(plan))]
    lines += [("problem", p) for p in plan.problems]
    lines += [("warning", w) for w in plan.warnings]
    print_section("rollback target", lines)


def _summary(plan: RollbackPlan) -> list[tuple[str, str]]:
    return [
        ("model", plan.name),
        ("production", "-" if plan.current is None else f"v{plan.current}"),
        ("target", _target(plan)),
        ("verdict", _verdict_text(plan)),
        ("why", plan.why),
        ("generation", str(plan.generation)),
    ]


def _target(plan: RollbackPlan) -> str:
    return "none: nothing to roll back to" if plan.target is None else f"v{plan.target}"


def _verdict_text(plan: RollbackPlan) -> str:
    if plan.safe:
        return f"SAFE: a rollback now restores v{plan.target}"
    return "UNSAFE: a rollback now would be refused"


def _replica(state: str | None, error: str | None, verified: str) -> str:
    if state is None:
        return "no replica"
    if state == "verified":
        return f"verified {verified}"
    return f"{state.upper()}: {error}" if error else state.upper()


def _print_list(title: str, items: tuple[str, ...]) -> None:
    if items:
        click.echo(title)
        for item in items:
            click.echo(f"  - {item}")
