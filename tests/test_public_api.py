"""The public API: what ``import registry`` promises, pinned so a change is deliberate."""

from __future__ import annotations

import subprocess
import sys

import registry

PUBLIC = [
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


def test_all_is_pinned() -> None:
    # Sorted the way ruff's RUF022 sorts (constants first); ruff keeps it so.
    assert registry.__all__ == PUBLIC


def test_every_public_name_resolves() -> None:
    for name in registry.__all__:
        assert getattr(registry, name) is not None, name


def test_importing_the_registry_and_its_release_rules_stays_light() -> None:
    code = (
        "import sys, registry, registry.release.gates, registry.release.policy;"
        "registry.connect, registry.ReleasePolicy;"
        "heavy = [m for m in ('prefect', 'great_expectations', 'sklearn', 'pandas') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
