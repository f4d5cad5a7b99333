"""Write commands: init, register, promote, rollback and alias set/delete.

Each is one call of the registry API; the rules (transitions, the release gates,
compare-and-swap on the generation, rollback targets) live in the store, not here.
A gate's refusal is recorded there and reaches the user as one line, exit 4.
``register`` alone outlives an unreachable registry: its bytes are stored first, and
the registration waits in the durable outbox (exit 75) for ``modelreg drain``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from registry.cli.state import CliState, json_option, pass_state

if TYPE_CHECKING:
    from registry.errors import RegistryUnavailable
    from registry.models import ArtifactRef, VersionCreate

STAGE_CHOICES = ("Staging", "Production", "Archived")

expect_generation = click.option(
    "--expect-generation",
    type=click.IntRange(min=0),
    metavar="G",
    help="Refuse (exit 4, nothing changed) unless the model is at generation G.",
)

force_option = click.option(
    "--force",
    is_flag=True,
    help="Break-glass: skip the release gates (needs --reason; recorded as forced).",
)


@click.command()
@json_option
@pass_state
def init(state: CliState) -> None:
    """Create or upgrade the registry schema and the artifact folder."""
    from pathlib import Path

    from registry.cli.render import emit_json
    from registry.errors import ArtifactError

    settings = state.settings()
    store = state.store()  # opening a database creates or upgrades its schema
    served = settings.registry_url.startswith(("http://", "https://"))
    if served:
        # A server upgrades its own database, and opening its store asks it nothing:
        # one read says it answers and takes the token (else exit 5 or 6 here).
        store.latest_seq()
    root = Path(settings.artifact_root).expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ArtifactError(f"cannot create artifact folder {root}: {exc.strerror}") from exc
    where = {"registry": _masked(settings.registry_url), "artifacts": str(root)}
    if state.json:
        emit_json(where)
        return
    status = "a registry server, answering" if served else "schema up to date"
    click.echo(f"registry:  {where['registry']} ({status})")
    click.echo(f"artifacts: {where['artifacts']}")


def _masked(url: str) -> str:
    """The URL without its password, fit to print."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@click.command()
@click.argument("name")
@click.option(
    "--artifact",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="The model file.",
)
@click.option(
    "--meta",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    required=True,
    help="Registration metadata (JSON, see DESIGN.md); '-' reads stdin.",
)
@click.option(
    "--format", "artifact_format", metavar="F", help="skops, onnx, … (default: by suffix)."
)
@json_option
@pass_state
def register(
    state: CliState, name: str, artifact: str, meta: str, artifact_format: str | None
) -> int:
    """Register a model file (--artifact) as a new version of model NAME.

    The bytes go to the artifact store first. If the registry cannot be reached
    then, the registration is queued durably in the local outbox with its
    idempotency key and the command exits 75: 'modelreg drain' (or the drain
    flow) delivers it later, exactly once.
    """
    import uuid
    from pathlib import Path

    from registry.cli.render import emit_json
    from registry.client import _format_of
    from registry.errors import RegistryUnavailable
    from registry.models import VersionCreate, check_model_name

    document = read_meta(meta)
    check_model_name(name)
    metadata = VersionCreate.parse(document)
    if metadata.idempotency_key is None:
        # Chosen before the first attempt, so that a retry after a lost reply, the
        # outbox and its drain all deliver under one key: one version, never two.
        metadata = metadata.model_copy(update={"idempotency_key": f"cli-{uuid.uuid4().hex}"})
    settings = state.settings()
    path = Path(artifact)
    ref = settings.artifacts().put_file(path, format=artifact_format or _format_of(path))
    try:
        version = state.store().register(name, ref, metadata)
    except RegistryUnavailable as exc:
        return _queue(state, name, ref, metadata, exc)
    if state.json:
        emit_json(version)
        return 0
    click.echo(
        f"registered {version.name} version {version.version} "
        f"(sha256 {version.artifact.sha256[:12]}, {version.artifact.size} bytes)"
    )
    return 0


def _queue(
    state: CliState,
    name: str,
    ref: ArtifactRef,
    metadata: VersionCreate,
    error: RegistryUnavailable,
) -> int:
    """Put a registration the registry did not take into the outbox; exit ``QUEUED``."""
    from registry.cli.errors import QUEUED
    from registry.cli.render import emit_json
    from registry.errors import RegistryUnavailable
    from registry.outbox import Outbox

    settings = state.settings()
    try:
        key = Outbox(settings.outbox_path).enqueue(name, ref, metadata)
    except (RegistryUnavailable, OSError) as exc:
        raise RegistryUnavailable(
            f"{error}; and the registration could not be queued in {settings.outbox_path}: {exc}"
        ) from exc
    registry_url = _masked(settings.registry_url)
    if state.json:
        emit_json(
            {
                "status": "queued",
                "name": name,
                "key": key,
                "sha256": ref.sha256,
                "outbox": str(settings.outbox_path),
                "registry": registry_url,
                "error": str(error),
            }
        )
    else:
        click.echo(
            f"queued {name} (key {key}, sha256 {ref.sha256[:12]}) in {settings.outbox_path}: "
            f"the registry is unreachable ({error}); 'modelreg --registry {registry_url} drain' "
            "or the drain flow registers it once the registry is back"
        )
    return QUEUED


def read_meta(path: str) -> dict[str, Any]:
    """The JSON object in ``path`` (``-``: stdin); NaN and Infinity are refused."""
    import json
    import sys
    from pathlib import Path

    from registry.errors import InvalidInput

    source = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read metadata {source}: {exc}") from exc

    def refuse(constant: str) -> None:
        raise InvalidInput(
            f"invalid metadata in {source}: {constant} is not a number JSON allows "
            "(metrics and params must be finite)"
        )

    try:
        data = json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"metadata {source} is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"metadata {source} must be a JSON object")
    return data


@click.command()
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.option(
    "--stage",
    type=click.Choice(STAGE_CHOICES, case_sensitive=False),
    default="Production",
    show_default=True,
    metavar="STAGE",
    help="Staging, Production or Archived (any case).",
)
@expect_generation
@click.option("--reason", help="Why; kept in the event log (required with --force).")
@force_option
@json_option
@pass_state
def promote(
    state: CliState,
    name: str,
    version: int,
    stage: str,
    expect_generation: int | None,
    reason: str | None,
    force: bool,
) -> None:
    """Move VERSION of NAME to a stage (default: Production).

    Staging takes the release policy's metric rules; Production takes its gates
    (replicas, health, canary, signature, approvals: see 'modelreg policy show').
    A refusal moves nothing, is recorded in 'modelreg history' and exits 4 listing
    every unmet gate. Promoting to Production archives the version that served
    before, in the same transaction.
    """
    from registry.cli.render import emit_json, print_pointer_change
    from registry.models import Stage

    change = state.store().transition(
        name,
        version,
        Stage.parse(stage),
        expected_generation=expect_generation,
        reason=reason,
        force=force,
    )
    if state.json:
        emit_json(change)
    else:
        print_pointer_change(change, nothing=f"version {version} is already in {stage}")


@click.command()
@click.argument("name")
@click.option(
    "--to", type=click.IntRange(min=1), metavar="VERSION", help="A version that once served."
)
@click.option("--reason", help="Why; kept in the event log (required unless --dry-run).")
@expect_generation
@click.option(
    "--force",
    is_flag=True,
    help="Roll back even if the target is not verified in every region (recorded as forced).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Change nothing: name the target, why, and whether the rollback would go through "
    "(exit 0 if safe, 4 if it would be refused).",
)
@json_option
@pass_state
def rollback(
    state: CliState,
    name: str,
    to: int | None,
    reason: str | None,
    expect_generation: int | None,
    force: bool,
    dry_run: bool,
) -> None:
    """Put back the previous Production version of NAME.

    Without --to: the most recent earlier Production version that was not itself
    rolled back. No canary or health gate, but the target must be verified in
    every region of the policy, and every app release following production must
    be able to feed it (else exit 4, naming what is missing). The current
    Production version is archived; resolvers are told to switch at once.

    With --dry-run: the plan only, decided by the same code: the target and why,
    SAFE or UNSAFE with every problem, the target's replica in each region, each
    bound app release and the target's latest checks.
    """
    from registry.cli.render import emit_json, print_pointer_change

    if dry_run:
        _plan_rollback(state, name, to, expect_generation, force)
        return
    if reason is None:
        raise click.UsageError("Missing option '--reason' (why; kept in the event log).")
    change = state.store().rollback(
        name, to=to, expected_generation=expect_generation, reason=reason, force=force
    )
    if state.json:
        emit_json(change)
    else:
        print_pointer_change(change, nothing="")


def _plan_rollback(
    state: CliState, name: str, to: int | None, expect_generation: int | None, force: bool
) -> None:
    """Print the plan; exit 4 (what the refused rollback would give) when it is unsafe."""
    from registry.cli.errors import CONFLICT
    from registry.cli.render import emit_json
    from registry.cli.rollback_plan import plan_json, print_plan

    if force or expect_generation is not None:
        # The plan is of the gated rollback at the current generation: what it says
        # would not be what a forced or generation-checked one does.
        raise click.UsageError(
            "--dry-run takes --to, --reason and --json, not --force or --expect-generation"
        )
    plan = state.store().rollback_plan(name, to=to)
    if state.json:
        emit_json(plan_json(plan))
    else:
        print_plan(plan)
    if not plan.safe:
        raise click.exceptions.Exit(CONFLICT)


@click.group()
@json_option
def alias() -> None:
    """Named pointers to versions (champion, challenger, …).

    Protected aliases (default: production, champion; see 'modelreg policy show')
    move only through the promotion gate, or with --force and a reason.
    """


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=click.IntRange(min=1))
@expect_generation
@click.option("--reason", help="Why; kept in the event log (required with --force).")
@force_option
@json_option
@pass_state
def alias_set(
    state: CliState,
    name: str,
    alias_name: str,
    version: int,
    expect_generation: int | None,
    reason: str | None,
    force: bool,
) -> None:
    """Point ALIAS of model NAME at VERSION.

    'production' is the Production stage: setting it is a promotion. A protected
    alias passes the same gates (exit 4 and a recorded refusal otherwise).
    """
    _move_alias(state, name, alias_name, version, expect_generation, reason, force)


@alias.command("delete")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@expect_generation
@click.option("--reason", help="Why; kept in the event log (required with --force).")
@force_option
@json_option
@pass_state
def alias_delete(
    state: CliState,
    name: str,
    alias_name: str,
    expect_generation: int | None,
    reason: str | None,
    force: bool,
) -> None:
    """Remove ALIAS from model NAME (a protected alias only with --force)."""
    _move_alias(state, name, alias_name, None, expect_generation, reason, force)


def _move_alias(
    state: CliState,
    name: str,
    alias_name: str,
    version: int | None,
    expect_generation: int | None,
    reason: str | None,
    force: bool,
) -> None:
    from registry.cli.render import emit_json, print_pointer_change

    change = state.store().set_aliases(
        name,
        {alias_name: version},
        expected_generation=expect_generation,
        reason=reason,
        force=force,
    )
    if state.json:
        emit_json(change)
    else:
        print_pointer_change(change, nothing=f"alias {alias_name} already points at {version}")
