"""The registry's error types: callers catch these, never third-party errors.

    RegistryError
    ├── InvalidInput          bad name, NaN metric, malformed filter, bad metadata
    ├── NotFound              no such model, version or alias
    ├── Conflict              stale generation, illegal stage transition, reused key
    ├── GateRefused           a promotion gate said no (reasons attached)
    ├── ArtifactError         bytes could not be stored or read
    │   ├── ChecksumMismatch  bytes are not the ones that were registered
    │   └── ArtifactUnavailable  the artifact store cannot be reached (transient: retry)
    └── RegistryUnavailable   the store cannot be reached or stayed locked

Third-party errors (SQLAlchemy, botocore, httpx) are translated once, at the
boundary that calls them, with ``raise X(...) from exc``.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base class of every error the registry raises on purpose."""


class InvalidInput(RegistryError, ValueError):
    """The caller's input is malformed; nothing was changed."""


class NotFound(RegistryError, LookupError):
    """The named model, version or alias does not exist."""


class Conflict(RegistryError):
    """The change lost a race or breaks a rule about the current state."""


class GateRefused(RegistryError):
    """A promotion gate refused; ``reasons`` says why."""

    def __init__(self, message: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reasons = reasons


class ArtifactError(RegistryError):
    """Artifact bytes could not be stored, found or read."""


class ChecksumMismatch(ArtifactError):
    """The bytes read back do not match the registered sha256 or size."""


class ArtifactUnavailable(ArtifactError):
    """The artifact store's endpoint could not be reached or kept failing; retry later."""


class RegistryUnavailable(RegistryError):
    """The registry store cannot be reached (down, locked too long, misconfigured)."""
