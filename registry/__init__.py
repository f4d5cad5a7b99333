"""modelreg: a model registry that knows what serves, why, and rolls back in one call.

The public names are imported on first use (PEP 562), so ``import registry`` —
and with it every ``modelreg`` command and the serving resolver — pays only for
what it touches.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "connect": "registry.client",
    "open_artifacts": "registry.client",
    "register_file": "registry.client",
    "Settings": "registry.config",
    "ArtifactError": "registry.errors",
    "ArtifactUnavailable": "registry.errors",
    "ChecksumMismatch": "registry.errors",
    "Conflict": "registry.errors",
    "GateRefused": "registry.errors",
    "InvalidInput": "registry.errors",
    "NotFound": "registry.errors",
    "RegistryError": "registry.errors",
    "RegistryUnavailable": "registry.errors",
    "ArtifactRef": "registry.models",
    "Event": "registry.models",
    "LineageHit": "registry.models",
    "ModelVersion": "registry.models",
    "PointerChange": "registry.models",
    "RegisteredModel": "registry.models",
    "Signature": "registry.models",
    "Stage": "registry.models",
    "VersionCreate": "registry.models",
    "RegistryStore": "registry.store.base",
    "TRANSIENT_ERRORS": "registry.errors",
    "ReleaseCheckFailed": "registry.errors",
    "StorageError": "registry.errors",
    "SchemaMismatch": "registry.errors",
    "LockTimeout": "registry.errors",
    "AppRelease": "registry.models",
    "Binding": "registry.models",
    "EventDetails": "registry.models",
    "Origin": "registry.models",
    "ReleasePolicy": "registry.release.policy",
    "Gate": "registry.release.policy",
    "PolicyRecord": "registry.release.policy",
    "resolve": "registry.client",
    "Forbidden": "registry.errors",
    "Unauthenticated": "registry.errors",
    "Role": "registry.auth",
    "Token": "registry.auth",
}
__all__ = [
    "TRANSIENT_ERRORS",
    "AppRelease",
    "ArtifactError",
    "ArtifactRef",
    "ArtifactUnavailable",
    "Binding",
    "ChecksumMismatch",
    "Conflict",
    "Event",
    "EventDetails",
    "Forbidden",
    "Gate",
    "GateRefused",
    "InvalidInput",
    "LineageHit",
    "LockTimeout",
    "ModelVersion",
    "NotFound",
    "Origin",
    "PointerChange",
    "PolicyRecord",
    "RegisteredModel",
    "RegistryError",
    "RegistryStore",
    "RegistryUnavailable",
    "ReleaseCheckFailed",
    "ReleasePolicy",
    "Role",
    "SchemaMismatch",
    "Settings",
    "Signature",
    "Stage",
    "StorageError",
    "Token",
    "Unauthenticated",
    "VersionCreate",
    "connect",
    "open_artifacts",
    "register_file",
    "resolve",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from registry.auth import Role, Token
    from registry.client import connect, open_artifacts, register_file, resolve
    from registry.config import Settings
    from registry.errors import (
        TRANSIENT_ERRORS,
        ArtifactError,
        ArtifactUnavailable,
        ChecksumMismatch,
        Conflict,
        Forbidden,
        GateRefused,
        InvalidInput,
        LockTimeout,
        NotFound,
        RegistryError,
        RegistryUnavailable,
        ReleaseCheckFailed,
        SchemaMismatch,
        StorageError,
        Unauthenticated,
    )
    from registry.models import (
        AppRelease,
        ArtifactRef,
        Binding,
        Event,
        EventDetails,
        LineageHit,
        ModelVersion,
        Origin,
        PointerChange,
        RegisteredModel,
        Signature,
        Stage,
        VersionCreate,
    )
    from registry.release.policy import Gate, PolicyRecord, ReleasePolicy
    from registry.store.base import RegistryStore
