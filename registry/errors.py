"""The registry's error types: callers catch these, never third-party errors.

    RegistryError
    ├── InvalidInput          bad name, NaN metric, malformed filter, bad metadata or policy
    ├── NotFound              no such model, version, alias, policy or app release
    ├── Conflict              stale generation, illegal stage transition, reused key
    ├── GateRefused           a release gate said no (reasons attached; recorded as an event)
    ├── Unauthenticated       no token, a malformed, unknown or revoked one (HTTP 401)
    ├── Forbidden             the token's role or scope does not allow this (HTTP 403)
    ├── ReleaseCheckFailed    a replication, health check or canary failed (recorded as a check)
    ├── ArtifactError         bytes could not be stored or read
    │   ├── ChecksumMismatch  bytes are not the ones that were registered
    │   └── ArtifactUnavailable  the artifact store cannot be reached (transient: retry)
    ├── StorageError          the database refused for a reason a retry will not fix
    │   └── SchemaMismatch    the database's schema is not the one this code expects
    └── RegistryUnavailable   the store cannot be reached or stayed locked (transient: retry)
        └── LockTimeout       another promotion or rollback held the model's lock too long

Only ``RegistryUnavailable`` (with ``LockTimeout``) and ``ArtifactUnavailable`` are
transient: the same call may succeed later, so those are the only ones worth a retry.

Third-party errors (SQLAlchemy, botocore, httpx) are translated once, at the
boundary that calls them, with ``raise X(...) from exc``.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base class of every error the registry raises on purpose."""


class InvalidInput(RegistryError, ValueError):
    """The caller's input is malformed; nothing was changed."""


class NotFound(RegistryError, LookupError):
    """The named model, version, alias, policy or app release does not exist."""


class Conflict(RegistryError):
    """The change lost a race or breaks a rule about the current state."""


class GateRefused(RegistryError):
    """A release gate refused; ``reasons`` says why (one line each)."""

    def __init__(self, message: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.reasons = tuple(reasons)

    def __reduce__(self) -> tuple[type[GateRefused], tuple[str, tuple[str, ...]]]:
        # Survives pickling (Prefect results, Dask workers) with its reasons.
        return (type(self), (str(self), self.reasons))


class Unauthenticated(RegistryError):
    """The request carried no valid token (missing, malformed, unknown or revoked)."""


class Forbidden(RegistryError):
    """The verified token's role or scope does not allow this operation; nothing changed."""


class ReleaseCheckFailed(RegistryError):
    """A release check (replication, health, canary) ran and failed; it is recorded."""


class ArtifactError(RegistryError):
    """Artifact bytes could not be stored, found or read."""


class ChecksumMismatch(ArtifactError):
    """The bytes read back do not match the registered sha256 or size."""


class ArtifactUnavailable(ArtifactError):
    """The artifact store's endpoint could not be reached or kept failing; retry later."""


class StorageError(RegistryError):
    """The registry database refused the operation for a reason retrying will not fix:
    the disk is full, the file is read-only or corrupt."""


class SchemaMismatch(StorageError):
    """The database's schema is not the one this code expects (upgrade it: ``modelreg init``)."""


class RegistryUnavailable(RegistryError):
    """The registry store cannot be reached (down, locked too long, misconfigured)."""


class LockTimeout(RegistryUnavailable):
    """Another promotion or rollback of the model held its lock for the whole timeout."""


TRANSIENT_ERRORS: tuple[type[RegistryError], ...] = (RegistryUnavailable, ArtifactUnavailable)
