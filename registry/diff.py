"""What differs between two model versions: the view wanted before a rollback.

``diff_versions(a, b)`` is a pure function of two ``ModelVersion`` objects and
returns a frozen ``VersionDiff``: metric deltas, signature changes (features
added, removed, retyped or reordered; target and preprocessing version), params
and tags, lineage (datasets, feature pipeline, code) and environment. Every
"change" reads from ``a`` to ``b``; a value absent on one side is ``None`` there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from registry.models import DatasetRef, Feature, ModelVersion, ParamValue, Signature, Stage


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Change(_Frozen):
    """One value as it is in version ``a`` and in version ``b``."""

    a: ParamValue = None
    b: ParamValue = None


class MetricDelta(_Frozen):
    key: str
    a: float | None = None
    b: float | None = None
    delta: float | None = None  # b - a, when both versions have the metric


class MappingDiff(_Frozen):
    """Keys only in ``b`` (added), only in ``a`` (removed), or in both with new values."""

    added: dict[str, ParamValue] = Field(default_factory=dict)
    removed: dict[str, ParamValue] = Field(default_factory=dict)
    changed: dict[str, Change] = Field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


class Retyped(_Frozen):
    name: str
    a: str
    b: str


class SignatureDiff(_Frozen):
    added: tuple[Feature, ...] = ()
    removed: tuple[Feature, ...] = ()
    retyped: tuple[Retyped, ...] = ()
    reordered: bool = False
    # The features both versions have, each in its version's order (set when reordered).
    order_a: tuple[str, ...] = ()
    order_b: tuple[str, ...] = ()
    target: Change | None = None
    preprocessing_version: Change | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.retyped
            or self.reordered
            or self.target
            or self.preprocessing_version
        )


class LineageDiff(_Frozen):
    datasets_added: tuple[str, ...] = ()
    datasets_removed: tuple[str, ...] = ()
    # Same ``name@version`` on both sides, but different fingerprint, rows or dates.
    datasets_changed: tuple[str, ...] = ()
    feature_pipeline: Change | None = None
    code_repository: Change | None = None
    code_commit: Change | None = None
    code_branch: Change | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.datasets_added
            or self.datasets_removed
            or self.datasets_changed
            or self.feature_pipeline
            or self.code_repository
            or self.code_commit
            or self.code_branch
        )


class EnvironmentDiff(_Frozen):
    python: Change | None = None
    packages: MappingDiff = Field(default_factory=MappingDiff)

    @property
    def empty(self) -> bool:
        return self.python is None and self.packages.empty


class VersionSummary(_Frozen):
    name: str
    version: int
    stage: Stage
    created_at: datetime
    created_by: str
    sha256: str
    size: int
    format: str


class VersionDiff(_Frozen):
    a: VersionSummary
    b: VersionSummary
    artifact_changed: bool
    metrics: tuple[MetricDelta, ...] = ()
    params: MappingDiff = Field(default_factory=MappingDiff)
    tags: MappingDiff = Field(default_factory=MappingDiff)
    signature: SignatureDiff = Field(default_factory=SignatureDiff)
    lineage: LineageDiff = Field(default_factory=LineageDiff)
    environment: EnvironmentDiff = Field(default_factory=EnvironmentDiff)


def diff_versions(a: ModelVersion, b: ModelVersion) -> VersionDiff:
    """Everything that changes if serving moves from version ``a`` to version ``b``."""
    return VersionDiff(
        a=_summary(a),
        b=_summary(b),
        artifact_changed=a.artifact.sha256 != b.artifact.sha256,
        metrics=diff_metrics(a.metrics, b.metrics),
        params=diff_mapping(a.params, b.params),
        tags=diff_mapping(a.tags, b.tags),
        signature=diff_signatures(a.signature, b.signature),
        lineage=diff_lineage(a, b),
        environment=EnvironmentDiff(
            python=_change(a.environment.python, b.environment.python),
            packages=diff_mapping(a.environment.packages, b.environment.packages),
        ),
    )


def _summary(version: ModelVersion) -> VersionSummary:
    return VersionSummary(
        name=version.name,
        version=version.version,
        stage=version.stage,
        created_at=version.created_at,
        created_by=version.created_by,
        sha256=version.artifact.sha256,
        size=version.artifact.size,
        format=version.artifact.format,
    )


def _change(a: ParamValue, b: ParamValue) -> Change | None:
    return None if _same(a, b) else Change(a=a, b=b)


def _same(a: ParamValue, b: ParamValue) -> bool:
    # True == 1 in Python, but a param that went from 1 to true did change.
    return type(a) is type(b) and a == b


def diff_metrics(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[MetricDelta, ...]:
    """One delta per metric either version has, sorted by key."""
    return tuple(
        MetricDelta(
            key=key,
            a=a.get(key),
            b=b.get(key),
            delta=b[key] - a[key] if key in a and key in b else None,
        )
        for key in sorted(a.keys() | b.keys())
    )


def diff_mapping(a: Mapping[str, ParamValue], b: Mapping[str, ParamValue]) -> MappingDiff:
    return MappingDiff(
        added={k: b[k] for k in sorted(b.keys() - a.keys())},
        removed={k: a[k] for k in sorted(a.keys() - b.keys())},
        changed={
            k: Change(a=a[k], b=b[k]) for k in sorted(a.keys() & b.keys()) if not _same(a[k], b[k])
        },
    )


def diff_signatures(a: Signature | None, b: Signature | None) -> SignatureDiff:
    """A missing signature counts as one with no features, target or preprocessing."""
    features_a = list(a.features) if a else []
    features_b = list(b.features) if b else []
    dtypes_a = {f.name: f.dtype for f in features_a}
    dtypes_b = {f.name: f.dtype for f in features_b}
    order_a = tuple(f.name for f in features_a if f.name in dtypes_b)
    order_b = tuple(f.name for f in features_b if f.name in dtypes_a)
    reordered = order_a != order_b
    return SignatureDiff(
        added=tuple(f for f in features_b if f.name not in dtypes_a),
        removed=tuple(f for f in features_a if f.name not in dtypes_b),
        retyped=tuple(
            Retyped(name=name, a=dtypes_a[name], b=dtypes_b[name])
            for name in order_b
            if dtypes_a[name] != dtypes_b[name]
        ),
        reordered=reordered,
        order_a=order_a if reordered else (),
        order_b=order_b if reordered else (),
        target=_change(
            _feature_text(a.target if a else None), _feature_text(b.target if b else None)
        ),
        preprocessing_version=_change(
            a.preprocessing_version if a else None, b.preprocessing_version if b else None
        ),
    )


def _feature_text(feature: Feature | None) -> str | None:
    return None if feature is None else f"{feature.name} ({feature.dtype})"


def diff_lineage(a: ModelVersion, b: ModelVersion) -> LineageDiff:
    datasets_a = {_dataset_key(d): d for d in a.lineage.datasets}
    datasets_b = {_dataset_key(d): d for d in b.lineage.datasets}
    code_a, code_b = a.lineage.code, b.lineage.code
    return LineageDiff(
        datasets_added=tuple(sorted(datasets_b.keys() - datasets_a.keys())),
        datasets_removed=tuple(sorted(datasets_a.keys() - datasets_b.keys())),
        datasets_changed=tuple(
            key
            for key in sorted(datasets_a.keys() & datasets_b.keys())
            if datasets_a[key] != datasets_b[key]
        ),
        feature_pipeline=_change(a.lineage.feature_pipeline, b.lineage.feature_pipeline),
        code_repository=_change(
            code_a.repository if code_a else None, code_b.repository if code_b else None
        ),
        code_commit=_change(code_a.commit if code_a else None, code_b.commit if code_b else None),
        code_branch=_change(code_a.branch if code_a else None, code_b.branch if code_b else None),
    )


def _dataset_key(dataset: DatasetRef) -> str:
    return f"{dataset.name}@{dataset.version}"
