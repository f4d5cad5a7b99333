"""Retention records: what the registry's versions hold in the artifact stores, and what
``modelreg gc`` took away.

Output and input shapes of the store's retention methods (``artifact_references``,
``record_collection``), and the pure decisions ``modelreg gc`` makes on them: which
bytes are referenced, which are protected forever, which old versions
``--keep-versions`` may delete. Light: no store, no artifact store, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from registry.models import Event, Stage

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

# Why a version is protected, as ``ArtifactUse.protected`` says it.
SERVED = "served in Production"
BOUND = "bound by an app release"
LIVE_STAGES = (Stage.STAGING, Stage.PRODUCTION)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ArtifactUse(_Frozen):
    """One version's artifact, and why the version must stay (empty: it may go)."""

    model: str
    version: int
    sha256: str
    size: int
    format: str
    stage: Stage
    created_at: datetime
    # "served in Production", "bound by an app release", "alias champion", "stage Staging"
    protected: tuple[str, ...] = ()


class ArtifactReferences(_Frozen):
    """Every sha256 the registry refers to, read in one transaction.

    ``versions`` holds each existing version's artifact (a bundle's manifest: the store
    cannot see inside it, so whoever sweeps an artifact store reads the manifests of
    ``bundles()`` there and keeps their files too). ``served`` lists the digests
    registered for every version that ever entered Production, found through the event
    log, so they are kept even if such a version's row were somehow gone.
    ``subject_manifests`` are the content-addressed manifests of dataset versions.
    """

    versions: tuple[ArtifactUse, ...] = ()
    served: tuple[str, ...] = ()
    subject_manifests: tuple[str, ...] = ()
    seq: int = 0  # the event log's head when this was read

    def referenced(self, *, without: Iterable[ArtifactUse] = ()) -> set[str]:
        """The digests that must stay in every store (except the ``without`` versions')."""
        gone = {(use.model, use.version) for use in without}
        kept = {use.sha256 for use in self.versions if (use.model, use.version) not in gone}
        return kept | set(self.served) | set(self.subject_manifests)

    def protected(self) -> set[str]:
        """Digests of versions that must never go: never collected, whatever else says."""
        return {use.sha256 for use in self.versions if use.protected} | set(self.served)

    def bundles(self, *, without: Iterable[ArtifactUse] = ()) -> list[ArtifactUse]:
        """The referenced bundles (``format == "bundle"``), one per manifest digest."""
        gone = {(use.model, use.version) for use in without}
        found: dict[str, ArtifactUse] = {}
        for use in self.versions:
            if use.format == "bundle" and (use.model, use.version) not in gone:
                found.setdefault(use.sha256, use)
        return list(found.values())


class CollectedArtifact(_Frozen):
    """Bytes ``modelreg gc`` removed from one artifact store."""

    sha256: Sha256
    size: int = Field(ge=0)
    store: str = Field(min_length=1, max_length=1000)  # "artifacts" or a region's name
    # The manifest digest of the bundle this was a file of (its owner is the bundle's).
    via: Sha256 | None = None


class CollectionRecord(_Frozen):
    """What ``record_collection`` logged: one ``artifact.collected`` event per item whose
    digest a version of some model was registered with (on that model, deleted or not),
    and the items no registration ever named (an upload whose registration never
    committed), which have no model to be logged on."""

    events: tuple[Event, ...] = ()
    unattributed: tuple[CollectedArtifact, ...] = ()


def prunable(references: ArtifactReferences, keep: int) -> list[ArtifactUse]:
    """The versions ``--keep-versions keep`` deletes: of each model, those older than its
    ``keep`` newest that nothing protects (never in Production, no binding, no alias,
    stage None or Archived). Oldest first per model, models by name."""
    if keep < 0:
        raise ValueError("keep must be >= 0")
    by_model: dict[str, list[ArtifactUse]] = {}
    for use in references.versions:
        by_model.setdefault(use.model, []).append(use)
    chosen: list[ArtifactUse] = []
    for model in sorted(by_model):
        newest_first = sorted(by_model[model], key=lambda use: use.version, reverse=True)
        old = [use for use in newest_first[keep:] if not use.protected]
        chosen.extend(sorted(old, key=lambda use: use.version))
    return chosen
