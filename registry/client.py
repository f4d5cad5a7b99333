"""Opening a registry by URL, and registering a file (bytes first, then metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.artifacts import ArtifactStore
from registry.config import Settings
from registry.errors import InvalidInput
from registry.models import ModelVersion, Origin, VersionCreate, check_model_name
from registry.store.base import RegistryStore


def connect(
    url: str | None = None, *, settings: Settings | None = None, origin: Origin | None = None
) -> RegistryStore:
    """The registry at ``url``: a database (``sqlite:///…``, ``postgresql://…``), acting
    as ``settings.actor``, or a registry server (``http(s)://…``), acting as the token
    of ``settings.token`` (MODELREG_TOKEN). ``origin`` (a flow run) is recorded with
    every change it makes.

    Without a token a server store still opens (nothing is asked of the server yet);
    its first call then fails with ``Unauthenticated`` and the server's message.

    With ``settings.read_registry_url`` (for ``settings.registry_url``), a ``ReplicatedStore``:
    writes to the registry, reads from that read-only PostgreSQL replica whenever it
    has caught up with what this process wrote."""
    settings = settings or Settings.from_env()
    target = url or settings.registry_url
    if settings.read_registry_url and target == settings.registry_url:
        return _replicated(target, settings.read_registry_url, settings, origin)
    if target.startswith(("sqlite:", "postgresql:", "postgresql+")):
        from registry.store.sql import SqlStore

        return SqlStore(target, actor=settings.actor, origin=origin)
    if target.startswith(("http://", "https://")):
        from registry.store.http import HttpStore

        return HttpStore(
            target,
            token=settings.token,
            actor_hint=settings.actor,
            origin=origin,
            write_budget_s=settings.write_retry_s,
        )
    raise InvalidInput(
        f"unsupported registry URL {target!r}: use sqlite:///…, postgresql://… or http(s)://…"
    )


def _replicated(
    target: str, read_url: str, settings: Settings, origin: Origin | None
) -> RegistryStore:
    """The primary at ``target`` with reads from the replica at ``read_url``
    (``settings.read_registry_url``, MODELREG_READ_URL)."""
    from registry.store.replicated import check_read_url, open_replicated
    from registry.store.sql import SqlStore

    check_read_url(target, read_url)
    return open_replicated(SqlStore(target, actor=settings.actor, origin=origin), read_url)


def open_artifacts(settings: Settings) -> ArtifactStore:
    """The artifact store at ``settings.artifact_root`` (a folder or ``s3://bucket/prefix``)."""
    return settings.artifacts()


def register_file(
    store: RegistryStore,
    artifacts: ArtifactStore,
    name: str,
    path: Path,
    meta: VersionCreate | dict[str, Any],
    *,
    format: str | None = None,
) -> ModelVersion:
    """Validate everything, store the bytes, then register the version.

    Bytes go first so a registered version never points at missing bytes; a
    failure after the upload leaves only an unreferenced content-addressed blob.
    """
    check_model_name(name)
    meta = VersionCreate.parse(meta)
    artifact = artifacts.put_file(Path(path), format=format or _format_of(Path(path)))
    return store.register(name, artifact, meta)


def _format_of(path: Path) -> str:
    return {".skops": "skops", ".onnx": "onnx", ".json": "json"}.get(path.suffix.lower(), "binary")


def resolve(
    name: str | None = None,
    ref: str | int = "production",
    *,
    app: str | None = None,
    release: str | None = None,
    settings: Settings | None = None,
) -> tuple[str, int]:
    """``(model, version)`` for ``name@ref``, or for what app release ``app@release`` uses.

    One registry read each call: serving code resolves through the cached resolver,
    not this.
    """
    with connect(settings=settings) as store:
        if app is not None or release is not None:
            if app is None or release is None:
                raise InvalidInput("resolve an app release with both app= and release=")
            return store.resolve_app_release(app, release, name)
        if name is None:
            raise InvalidInput("resolve needs a model name, or app= and release=")
        return name, store.resolve(name, ref)
