"""``modelreg server``: the registry's REST API, auth, event feed and webhooks over HTTP."""

from __future__ import annotations

import click

from registry.cli.state import CliState, pass_state


@click.command()
@click.option(
    "--registry",
    "registry_url",
    metavar="URL",
    help="The database to serve: sqlite:///PATH or postgresql://… (default: the global "
    "--registry, $MODELREG_URL, else sqlite:///.modelreg/registry.db).",
)
@click.option(
    "--read-registry",
    "read_registry_url",
    metavar="URL",
    help="A read-only PostgreSQL replica of --registry for the server's reads (writes go "
    "to --registry; a replica behind what an answer must include is not read). Default: "
    "the global --read-registry, $MODELREG_READ_URL.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes sharing the port (and the database).",
)
@click.option(
    "--max-body",
    "max_body_bytes",
    type=click.IntRange(min=1024),
    default=1 << 20,
    show_default=True,
    help="Largest request body accepted, in bytes (larger: 413).",
)
@click.option(
    "--no-webhooks",
    is_flag=True,
    help="Do not deliver webhooks from this server (another server process does).",
)
@click.option(
    "--webhook-max-backoff",
    "webhook_max_backoff_s",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Longest wait between two attempts to deliver a webhook event, in seconds.",
)
@click.option(
    "--feed-poll",
    "feed_poll_s",
    type=click.FloatRange(min=0.001, max=10),
    default=0.05,
    show_default=True,
    help="How often each server process reads the event log for its feed and its read "
    "cache, in seconds (PostgreSQL also wakes it on every change).",
)
@click.option(
    "--artifacts",
    "artifact_root",
    metavar="URL",
    help="Where the MLflow API stores the bytes of the sources it reads (a folder or "
    "s3://bucket/prefix; default: $MODELREG_ARTIFACTS).",
)
@click.option(
    "--source-root",
    "source_roots",
    metavar="DIR|s3://…",
    multiple=True,
    help="A folder or s3:// prefix the MLflow API may read model sources from (repeat it). "
    "A source outside every root is recorded as an unverified external reference.",
)
@click.option(
    "--mlflow-tracking",
    "mlflow_tracking_url",
    metavar="URL",
    help="An MLflow tracking server: runs:/ and models:/m- sources are read through it "
    "(its own token, if it needs one, in $MLFLOW_TRACKING_TOKEN of this process).",
)
@pass_state
def server(
    state: CliState,
    registry_url: str | None,
    read_registry_url: str | None,
    host: str,
    port: int,
    workers: int,
    max_body_bytes: int,
    no_webhooks: bool,
    webhook_max_backoff_s: float,
    feed_poll_s: float,
    artifact_root: str | None,
    source_roots: tuple[str, ...],
    mlflow_tracking_url: str | None,
) -> None:
    """Serve the registry over HTTP: REST API, tokens and roles, event feed, webhooks.

    Every request needs a bearer token (``modelreg token create``, run against the
    database). Several server processes may share one PostgreSQL database; with
    SQLite, run one server per file.
    """
    from registry.config import ServerConfig
    from registry.errors import InvalidInput
    from registry.store.sql import SqlStore

    try:
        import uvicorn
    except ImportError as exc:
        raise InvalidInput(
            "modelreg server needs the server extra: pip install 'modelreg[server]'"
        ) from exc
    url = registry_url or state.settings().registry_url
    if url.startswith(("http://", "https://")):
        raise InvalidInput("modelreg server serves a database: give sqlite:///… or postgresql://…")
    read_url = read_registry_url or state.settings().read_registry_url
    if read_url is not None:
        from registry.store.replicated import check_read_url

        check_read_url(url, read_url)
    SqlStore(url, actor="modelreg-server").close()  # migrate once, before the workers start
    config = ServerConfig(
        registry_url=url,
        max_body_bytes=max_body_bytes,
        webhooks=not no_webhooks,
        webhook_max_backoff_s=webhook_max_backoff_s,
        feed_poll_s=feed_poll_s,
        artifact_root=artifact_root,
        source_roots=tuple(source_roots),
        mlflow_tracking_url=mlflow_tracking_url,
        read_registry_url=read_url,
    )
    config.export()
    reads = f", reads from {_safe(read_url)}" if read_url else ""
    click.echo(
        f"modelreg server on http://{host}:{port} ({workers} worker(s)) for {_safe(url)}{reads}"
    )
    uvicorn.run(
        "registry.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="auto",  # uvloop and httptools when installed (the server extra)
        http="auto",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def _safe(url: str) -> str:
    """The URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
