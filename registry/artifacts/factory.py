"""Open an artifact store from a URI: ``file:///path``, a plain path, or ``s3://bucket/prefix``."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from registry.artifacts.base import ArtifactStore
from registry.artifacts.local import LocalArtifactStore
from registry.errors import InvalidInput


def open_store(uri: str, **options: Any) -> ArtifactStore:
    """The store a URI names; ``options`` go to ``S3ArtifactStore`` (e.g. ``endpoint_url``)."""
    if not uri:
        raise InvalidInput("empty artifact store URI")
    if "://" not in uri:
        return _local(uri, options)
    parts = urlsplit(uri)
    if parts.scheme == "file":
        if parts.netloc not in {"", "localhost"}:
            raise InvalidInput(f"file URI must be local: {uri!r}")
        return _local(unquote(parts.path), options)
    if parts.scheme == "s3":
        from registry.artifacts.s3 import S3ArtifactStore

        prefix = parts.path[1:] if parts.path.startswith("/") else parts.path
        return S3ArtifactStore(parts.netloc, unquote(prefix), **options)
    raise InvalidInput(f"unsupported artifact store URI {uri!r}: use file://, s3:// or a path")


def _local(path: str, options: dict[str, Any]) -> LocalArtifactStore:
    if options:
        raise InvalidInput(f"a local artifact store takes no options: {sorted(options)}")
    return LocalArtifactStore(path)
