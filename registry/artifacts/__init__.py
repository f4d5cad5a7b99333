"""Artifact stores: where model bytes live, addressed by their sha256."""

from registry.artifacts.base import ArtifactStore, content_key, file_digest
from registry.artifacts.local import LocalArtifactStore

__all__ = ["ArtifactStore", "LocalArtifactStore", "content_key", "file_digest"]
