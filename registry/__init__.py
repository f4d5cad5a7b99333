"""modelreg: a model registry that knows what serves, why, and rolls back in one call."""

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
