"""``modelreg policy show|set``: a model's release policy, kept and versioned in the registry.

The human form of ``show`` is YAML with the version, actor, reason and time as
comments, so ``policy show NAME > policy.yaml``, an edit and ``policy set`` round-trip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from registry.release.policy import PolicyRecord
    from registry.store.base import RegistryStore


@click.group()
@json_option
def policy() -> None:
    """The release policy of a model: gates, metric rules, regions, approvals.

    Promotion to Production and moves of protected aliases pass the gates the
    policy requires, whichever door is used (CLI, Python API, flows). A model
    without a stored policy has the default one (version 0).
    """


@policy.command("show")
@click.argument("name")
@click.option(
    "--version",
    "policy_version",
    type=click.IntRange(min=0),
    metavar="N",
    help="An older policy version (0: the default policy).",
)
@click.option("--history", is_flag=True, help="List every stored policy version instead.")
@json_option
@pass_state
def policy_show(state: CliState, name: str, policy_version: int | None, history: bool) -> None:
    """The release policy in force for model NAME (or version N, or its history)."""
    from registry.cli.render import emit_json

    store = state.store()
    if history:
        records = policy_records(store, name)
        if state.json:
            emit_json([policy_json(r) for r in records])
        else:
            _print_history(name, records)
        return
    record = (
        store.get_policy(name) if policy_version is None else _version(state, name, policy_version)
    )
    if state.json:
        emit_json(policy_json(record))
    else:
        click.echo(policy_text(record), nl=False)


def _version(state: CliState, name: str, number: int) -> PolicyRecord:
    from registry.errors import NotFound
    from registry.release.policy import PolicyRecord, ReleasePolicy

    store = state.store()
    if number == 0:
        store.get_model(name)  # NotFound for an unknown model, as for any other version
        return PolicyRecord(model=name, version=0, policy=ReleasePolicy(), reason="default policy")
    found = store.policy_history(name, limit=1, after=number - 1) if number > 0 else []
    if found and found[0].version == number:
        return found[0]
    raise NotFound(f"model {name!r} has no policy version {number}")


def policy_records(store: RegistryStore, name: str) -> list[PolicyRecord]:
    """Every stored policy version of model ``name``, oldest first (one per change)."""
    from registry.store.pages import every

    return list(
        every(lambda n, after: store.policy_history(name, limit=n, after=after), _number, 0)
    )


def _number(record: PolicyRecord) -> int:
    return record.version


@policy.command("set")
@click.argument("name")
@click.option(
    "--file",
    "path",
    required=True,
    metavar="FILE",
    help="The policy, YAML or JSON ('-' reads stdin); see 'modelreg policy show'.",
)
@click.option("--reason", required=True, help="Why; kept with the policy and in the event log.")
@json_option
@pass_state
def policy_set(state: CliState, name: str, path: str, reason: str) -> None:
    """Store a new release policy version for model NAME (from --file).

    The file is validated first: any problem is one line, exit 2, nothing stored.
    Older versions stay readable ('policy show NAME --version N').
    """
    from registry.cli.render import emit_json
    from registry.release.policy import ReleasePolicy

    source = "stdin" if path == "-" else path
    document = ReleasePolicy.from_text(read_text(path, "policy"), source=f"policy {source}")
    record = state.store().set_policy(name, document, reason=reason)
    if state.json:
        emit_json(policy_json(record))
        return
    was = f" (was {record.version - 1})" if record.version > 1 else ""
    click.echo(f"{name}: policy version {record.version} set{was}")


def read_text(path: str, what: str) -> str:
    """The UTF-8 text of ``path`` (``-``: stdin); any failure is one ``InvalidInput`` line."""
    import sys
    from pathlib import Path

    from registry.errors import InvalidInput

    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidInput(f"cannot read {what} file {path}: no such file") from exc
    except IsADirectoryError as exc:
        raise InvalidInput(f"cannot read {what} file {path}: it is a directory") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"cannot read {what} file {path}: not UTF-8 text") from exc
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} file {path}: {exc.strerror or exc}") from exc


def policy_json(record: PolicyRecord) -> dict[str, Any]:
    """A stored policy version; ``policy`` is the document ``policy set`` reads back."""
    from registry.cli.render import plain

    return {
        "model": record.model,
        "version": record.version,
        "default": record.version == 0,
        "actor": record.actor,
        "reason": record.reason,
        "created_at": plain(record).get("created_at"),
        "policy": record.policy.to_document(),
        "key_metrics": list(record.policy.key_metrics),
    }


def policy_text(record: PolicyRecord) -> str:
    """The policy as YAML, its provenance as comments."""
    import yaml

    from registry.cli.render import when

    if record.version == 0:
        header = [f"# {record.model}: default policy (version 0, none set)"]
    else:
        header = [
            f"# {record.model}: policy version {record.version}",
            f"# set by {record.actor or '-'} at {when(record.created_at)}: "
            + (" ".join((record.reason or "-").split())),  # one comment line, whatever it holds
        ]
    # Rules read best one a line; the other lists and mappings fit on theirs.
    body = "".join(
        yaml.safe_dump(
            {key: item},
            sort_keys=False,
            default_flow_style=False if key == "staging" else None,
            allow_unicode=True,
            width=1000,
        )
        for key, item in record.policy.to_document().items()
    )
    return "\n".join(header) + "\n" + body


def _print_history(name: str, records: list[PolicyRecord]) -> None:
    from registry.cli.render import print_table, when

    print_table(
        ["version", "set at", "by", "reason"],
        ([str(r.version), when(r.created_at), r.actor or "-", r.reason or "-"] for r in records),
        empty=f"{name}: no policy set; the default policy is in force (version 0)",
    )
