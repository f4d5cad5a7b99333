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
}
__all__ = [
    "ArtifactError",
    "ArtifactRef",
    "ArtifactUnavailable",
    "ChecksumMismatch",
    "Conflict",
    "Event",
    "GateRefused",
    "InvalidInput",
    "LineageHit",
    "ModelVersion",
    "NotFound",
    "PointerChange",
    "RegisteredModel",
    "RegistryError",
    "RegistryStore",
    "RegistryUnavailable",
    "Settings",
    "Signature",
    "Stage",
    "VersionCreate",
    "connect",
    "open_artifacts",
    "register_file",
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
    from registry.client import connect, open_artifacts, register_file
    from registry.config import Settings
    from registry.errors import (
        ArtifactError,
        ArtifactUnavailable,
        ChecksumMismatch,
        Conflict,
        GateRefused,
        InvalidInput,
        NotFound,
        RegistryError,
        RegistryUnavailable,
    )
    from registry.models import (
        ArtifactRef,
        Event,
        LineageHit,
        ModelVersion,
        PointerChange,
        RegisteredModel,
        Signature,
        Stage,
        VersionCreate,
    )
    from registry.store.base import RegistryStore
