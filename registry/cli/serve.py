"""``modelreg serve``: one model behind HTTP, through the resolver (needs the ``serve`` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from registry.cli.state import CliState, pass_state

if TYPE_CHECKING:
    from registry.resolver import Resolver


@click.command()
@click.argument("name")
@click.option(
    "--alias",
    metavar="ALIAS",
    help="Serve what this pointer names: production (the default), staging or an alias.",
)
@click.option("--version", "version", type=click.IntRange(min=1), help="Serve one fixed version.")
@click.option(
    "--app", metavar="APP", help="Serve what app release APP@RELEASE uses (with --release)."
)
@click.option("--release", "release_name", metavar="RELEASE", help="The app release (with --app).")
@click.option("--region", required=True, help="Download models from this region's artifact store.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--schema",
    "schema_path",
    metavar="FILE",
    help="The feature schema the serving code sends (Signature JSON): a model whose "
    "signature differs is never swapped in.",
)
@pass_state
def serve(
    state: CliState,
    name: str,
    alias: str | None,
    version: int | None,
    app: str | None,
    release_name: str | None,
    region: str,
    host: str,
    port: int,
    schema_path: str | None,
) -> None:
    """Serve model NAME over HTTP: /predict, /healthz, /readyz, /metrics.

    The model follows the registry within a second of a promotion or rollback, and
    keeps serving (reported on /readyz) while the registry is unreachable.
    """
    from registry.errors import InvalidInput
    from registry.resolver import Resolver

    try:
        import uvicorn

        from registry.serving import create_app
    except ImportError as exc:
        raise InvalidInput(
            f"modelreg serve needs the serve extra (pip install 'modelreg[serve]'): {exc}"
        ) from exc

    ref = _ref(name, alias, version, app, release_name)
    settings = state.settings()
    settings.region_store(region)  # an unknown region fails here, before anything starts
    schema = None
    if schema_path is not None:
        from registry.cli.app_releases import read_schema

        schema = read_schema(schema_path)
    resolver = Resolver(settings, region, [ref], schema=schema)
    _exit_on_signals()
    try:
        resolver.start()
        _check_model(resolver, name)
        app_ = create_app(resolver, ref)
        click.echo(f"serving {ref} from {region} on http://{host}:{port}", err=True)
        uvicorn.run(app_, host=host, port=port, log_level="warning")
    finally:
        resolver.close()


def _exit_on_signals() -> None:
    """SIGINT and SIGTERM end the command normally (exit 0, the resolver closed).

    uvicorn shuts down gracefully on either, then raises the signal again for the
    handler that was there before it: by default SIGTERM would kill the process
    before ``finally`` closes the resolver.
    """
    import signal
    from types import FrameType

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


def _ref(
    name: str, alias: str | None, version: int | None, app: str | None, release: str | None
) -> str:
    """The resolver reference the options name (at most one of the three ways)."""
    chosen = [alias is not None, version is not None, app is not None or release is not None]
    if sum(chosen) > 1:
        raise click.UsageError("give one of --alias, --version, or --app with --release")
    if app is not None or release is not None:
        if app is None or release is None:
            raise click.UsageError("--app and --release go together")
        return f"app={app},release={release}"
    if version is not None:
        return f"{name}@{version}"
    return f"{name}@{alias or 'production'}"


def _check_model(resolver: Resolver, name: str) -> None:
    """With --app, the release must use NAME (checked when something serves already)."""
    from registry.errors import InvalidInput, NotFound

    try:
        served = resolver.get()
    except NotFound:
        return
    if served.name != name:
        raise InvalidInput(f"{served.ref} serves model {served.name!r}, not {name!r}")
