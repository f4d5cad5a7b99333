"""Data subjects: dataset versions' subject manifests, the subject index, erasure requests."""

from __future__ import annotations

from collections.abc import Sequence

from registry.models import ArtifactRef, ErasureRequest, SubjectLineage, SubjectManifest
from registry.store.sql.engine import Database


class SubjectsMixin:
    db: Database
    actor: str

    def record_subject_manifest(
        self, dataset: str, version: str, manifest: ArtifactRef, subjects: Sequence[str]
    ) -> SubjectManifest:
        raise NotImplementedError("being written (H3)")

    def subject_manifest(self, dataset: str, version: str) -> SubjectManifest:
        raise NotImplementedError("being written (H3)")

    def subject_lineage(self, subject: str) -> SubjectLineage:
        raise NotImplementedError("being written (H3)")

    def request_erasure(self, subject: str, *, reason: str) -> ErasureRequest:
        raise NotImplementedError("being written (H3)")

    def justify_erasure(
        self, request_id: int, name: str, version: int, *, reason: str
    ) -> ErasureRequest:
        raise NotImplementedError("being written (H3)")

    def erasures(
        self, *, open_only: bool = False, model: str | None = None
    ) -> list[ErasureRequest]:
        raise NotImplementedError("being written (H3)")
