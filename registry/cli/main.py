"""The ``modelreg`` command group, its global options and the error wrapper.

Commands live in sibling modules and are imported only when invoked (or
listed by ``--help``). Every failure ends in ``RegistryCli.main``: one line
``error: <message>`` on stderr and an exit code from ``registry.cli.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

# name -> ("module:attribute", summary); the order is the order ``--help`` lists them
# in. The summary is the first line of the command's docstring, kept here so that
# ``--help`` imports no command module (a test checks the two agree).
COMMANDS: dict[str, tuple[str, str]] = {
    "init": (
        "registry.cli.lifecycle:init",
        "Create or upgrade the registry schema and the artifact folder.",
    ),
    "models": ("registry.cli.views:models", "What serves in Production now, for every model."),
    "versions": ("registry.cli.views:versions", "Versions of model NAME, newest first."),
    "show": ("registry.cli.views:show", "Everything about one version of model NAME."),
    "register": (
        "registry.cli.lifecycle:register",
        "Register a model file (--artifact) as a new version of model NAME.",
    ),
    "drain": (
        "registry.cli.outbox:drain",
        "Deliver the registrations queued while the registry was unreachable.",
    ),
    "promote": (
        "registry.cli.lifecycle:promote",
        "Move VERSION of NAME to a stage (default: Production).",
    ),
    "approve": (
        "registry.cli.approvals:approve",
        "Approve VERSION of NAME for Production, as yourself ($MODELREG_USER, or the token).",
    ),
    "rollback": (
        "registry.cli.lifecycle:rollback",
        "Put back the previous Production version of NAME.",
    ),
    "alias": (
        "registry.cli.lifecycle:alias",
        "Named pointers to versions (champion, challenger, …).",
    ),
    "history": (
        "registry.cli.views:history",
        "What moved model NAME's pointers, newest last: the 50 latest changes.",
    ),
    "policy": (
        "registry.cli.policy:policy",
        "The release policy of a model: gates, metric rules, regions, approvals.",
    ),
    "release": (
        "registry.cli.app_releases:release",
        "App releases: the schema a release's code sends, and the models it uses.",
    ),
    "search": ("registry.cli.queries:search", "Versions matching a filter, newest first."),
    "lineage": ("registry.cli.queries:lineage", "What was trained on what."),
    "dataset": (
        "registry.cli.datasets:dataset",
        "Dataset versions: record and show their subject manifests.",
    ),
    "erasure": (
        "registry.cli.erasure:erasure",
        "Erasure requests for a data subject: record, list, justify.",
    ),
    "diff": ("registry.cli.queries:diff", "What changes from version V1 to V2 of NAME."),
    "events": (
        "registry.cli.views:events",
        "The change feed: events after sequence number SEQ, in order.",
    ),
    "fleet": (
        "registry.cli.fleet:fleet",
        "Which version every running resolver serves, and whether the fleet agrees.",
    ),
    "replicate": (
        "registry.cli.replicas:replicate",
        "Copy VERSION of NAME into every region and verify each copy.",
    ),
    "replicas": (
        "registry.cli.replicas:replicas",
        "Where VERSION of NAME is replicated: region, state, checksum, verified at, error.",
    ),
    "verify": (
        "registry.cli.replicas:verify",
        "Re-read every replica of VERSION of NAME and check size and sha256.",
    ),
    "serve": (
        "registry.cli.serve:serve",
        "Serve model NAME over HTTP: /predict, /healthz, /readyz, /metrics.",
    ),
    "server": (
        "registry.cli.server:server",
        "Serve the registry over HTTP: REST API, tokens and roles, event feed, webhooks.",
    ),
    "token": (
        "registry.cli.tokens:token",
        "Bearer tokens for the registry server: create, list, revoke.",
    ),
    "backup": (
        "registry.cli.backup:backup",
        "Snapshot all registry metadata to a file, while writers keep writing.",
    ),
    "restore": (
        "registry.cli.backup:restore",
        "Restore a backup into an empty registry (either backend); refuses a non-empty one.",
    ),
    "check": (
        "registry.cli.check:check",
        "Check every invariant of the registry database (read-only, safe while it serves).",
    ),
    "webhook": (
        "registry.cli.webhooks:webhook",
        "Webhooks: signed deliveries of registry events to an HTTP receiver.",
    ),
    "gc": (
        "registry.cli.gc:gc",
        "Remove artifact bytes no version references, from every artifact store.",
    ),
    "agent": (
        "registry.cli.agent_cmd:agent",
        "The warm agent: read commands answered without Python's start-up (MODELREG_AGENT).",
    ),
}


class RegistryCli(click.Group):
    """A group that loads its commands lazily and reports every error in one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        import importlib

        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attribute = entry[0].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a reader that went away (``modelreg history M | head``) ends it
        quietly with exit 0. Caught here, inside click: click's own handler exits 1."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            reader_gone()
            raise click.exceptions.Exit(0) from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from ``COMMANDS``: listing needs no command module imported."""
        rows = [(name, summary) for name, (_target, summary) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    # One signature instead of click's two overloads (-> Never in standalone mode).
    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        import sys

        argv = list(sys.argv[1:] if args is None else args)
        try:
            result = super().main(
                argv, prog_name or "modelreg", complete_var, standalone_mode=False, **extra
            )
            code = result if isinstance(result, int) else 0
        except Exception as exc:
            from registry.cli.errors import report

            # --traceback is for debugging the CLI itself; expected errors never need it.
            code = report(exc, show_traceback="--traceback" in argv)
        if standalone_mode:
            sys.exit(code)
        return code


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    from registry.cli.state import set_json

    set_json(ctx, _param, value)


@click.group(cls=RegistryCli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--registry",
    "registry_url",
    metavar="URL",
    help="sqlite:///PATH, postgresql://… or http://HOST:PORT (a registry server; token in "
    "$MODELREG_TOKEN). Default: $MODELREG_URL, else sqlite:///.modelreg/registry.db.",
)
@click.option(
    "--read-registry",
    "read_registry_url",
    metavar="URL",
    help="A read-only PostgreSQL replica of --registry: reads go there unless it lags "
    "behind this command's own writes. Default: $MODELREG_READ_URL.",
)
@click.option(
    "--json",
    is_flag=True,
    expose_value=False,
    callback=_set_json,
    help="Print machine-readable JSON (also accepted after any command).",
)
@click.option("--traceback", is_flag=True, hidden=True, help="Show tracebacks of internal errors.")
@click.version_option(package_name="modelreg", prog_name="modelreg", message="%(prog)s %(version)s")
@click.pass_context
def cli(
    ctx: click.Context, registry_url: str | None, read_registry_url: str | None, traceback: bool
) -> None:
    """modelreg: what serves in production, why, and a one-command rollback."""
    from registry.cli.state import CliState

    state = ctx.ensure_object(CliState)
    state.registry_url = registry_url
    state.read_registry_url = read_registry_url


def reader_gone() -> None:
    """Stdout's reader closed the pipe: nothing more can be shown, and the flush at exit
    must not fail a second time ("Exception ignored … BrokenPipeError"). The recipe of
    Python's signal documentation: point stdout at /dev/null."""
    import contextlib
    import os
    import sys

    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main() -> None:
    """Console-script entry point (``modelreg``)."""
    import gc
    import sys

    # A short-lived process: skip cyclic garbage collection while it runs, and
    # freeze what was built so interpreter shutdown does not walk it (~0.2 s saved).
    gc.disable()
    try:
        code = cli.main(prog_name="modelreg", standalone_mode=False)
        sys.stdout.flush()  # streamed output is buffered: its last write happens here
    except BrokenPipeError:
        reader_gone()
        code = 0
    finally:
        gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    main()
