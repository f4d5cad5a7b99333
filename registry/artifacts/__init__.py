"""Artifact stores: where model bytes live, addressed by their sha256.

``S3ArtifactStore`` is imported from ``registry.artifacts.s3`` (or made by
``open_store``) so that boto3 stays out of ``import registry``.
"""

from registry.artifacts.base import ArtifactStore, content_key, sha256_of_key
from registry.artifacts.factory import open_store
from registry.artifacts.files import file_digest
from registry.artifacts.local import LocalArtifactStore

__all__ = [
    "ArtifactStore",
    "LocalArtifactStore",
    "content_key",
    "file_digest",
    "open_store",
    "sha256_of_key",
]
