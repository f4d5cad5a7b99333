"""Settings: the one place that reads (and, for third-party telemetry, writes) the environment.

Built at an entry point (CLI, flow, server) and passed down; nothing reads
configuration or opens a connection at import time. ``Settings`` is a frozen,
hashable, JSON-able value, so Prefect tasks take it as an input (and key their
caches on it) as it is.

One exception: ``registry.cli.agent``, the console script's first stop, reads its own
``MODELREG_AGENT*`` variables, since it decides before anything imports pydantic.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.artifacts import ArtifactStore
    from registry.models import Origin
    from registry.store.base import RegistryStore

DEFAULT_HOME = ".modelreg"
DEFAULT_REGIONS = ("us-east", "eu-west", "ap-south")
OUTBOX_FILE = "outbox.db"
# Telemetry of the pipeline's third-party libraries, off unless the user set it.
_QUIET = (
    ("DO_NOT_TRACK", "1"),
    ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
    ("GX_ANALYTICS_ENABLED", "false"),
)


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class Settings(BaseModel):
    """Where the registry, the artifacts and the regions are, and who is acting."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    home: Path = Path(DEFAULT_HOME)
    registry_url: str = f"sqlite:///{DEFAULT_HOME}/registry.db"
    artifact_root: str = f"{DEFAULT_HOME}/artifacts"
    regions: tuple[str, ...] = DEFAULT_REGIONS
    actor: str = Field(default_factory=_default_actor)
    # Where each region's artifact store lives (a folder or s3://bucket/prefix), as
    # (region, root) pairs; regions left out get ``<home>/regions/<region>``.
    region_roots: tuple[tuple[str, str], ...] = ()
    # The bearer token for an http:// registry (MODELREG_TOKEN); never shown in a repr.
    token: str | None = Field(default=None, repr=False)
    # How long a write to a registry server is retried through an outage before it
    # fails (a registration then goes to the outbox): MODELREG_WRITE_RETRY_S.
    write_retry_s: float = Field(default=30.0, ge=0, le=3600)
    # A read-only PostgreSQL replica of ``registry_url`` (MODELREG_READ_URL): reads go
    # there unless it is behind this process's own writes (registry.store.replicated).
    read_registry_url: str | None = None
    # The secret that keys data subjects' ids (MODELREG_SUBJECT_SECRET, hex); None: the
    # key file ``<home>/subject.key`` (registry.subjects). Never shown in a repr.
    subject_secret: str | None = Field(default=None, repr=False)

    def __init__(self, **data: Any) -> None:
        from pydantic import ValidationError

        from registry.models import validation_message

        try:
            super().__init__(**data)
        except ValidationError as exc:
            cause = exc.errors()[0].get("ctx", {}).get("error")
            if isinstance(cause, InvalidInput):
                raise cause from None
            raise InvalidInput(f"invalid settings: {validation_message(exc)}") from exc

    @model_validator(mode="before")
    @classmethod
    def _pairs(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("region_roots"), Mapping):
            data = {**data, "region_roots": tuple(data["region_roots"].items())}
        return data

    @model_validator(mode="after")
    def _complete_roots(self) -> Settings:
        from registry.release_models import check_region

        for region in self.regions:
            check_region(region)
        given = dict(self.region_roots)
        unknown = sorted(set(given) - set(self.regions))
        if unknown:
            raise InvalidInput(
                f"region roots given for unknown regions {', '.join(unknown)}; "
                f"the regions are {', '.join(self.regions)} (MODELREG_REGIONS)"
            )
        roots = tuple((r, given.get(r) or str(self.home / "regions" / r)) for r in self.regions)
        object.__setattr__(self, "region_roots", roots)
        return self

    # ------------------------------------------------------------ what it opens

    def connect(self, *, origin: Origin | None = None) -> RegistryStore:
        """The registry store (``RegistryUnavailable`` when it cannot be reached)."""
        from registry.client import connect

        return connect(settings=self, origin=origin)

    def artifacts(self) -> ArtifactStore:
        """The artifact store at ``artifact_root`` (a folder or ``s3://bucket/prefix``)."""
        from registry.artifacts import open_store

        return open_store(self.artifact_root)

    def region_store(self, region: str) -> ArtifactStore:
        """The artifact store of one configured region."""
        from registry.artifacts import open_store

        root = dict(self.region_roots).get(region)
        if root is None:
            raise InvalidInput(
                f"unknown region {region!r}; the regions are {', '.join(self.regions)} "
                "(MODELREG_REGIONS)"
            )
        return open_store(root)

    def as_actor(self, actor: str) -> Settings:
        """The same settings acting as someone else (an approver named in the Prefect UI)."""
        return self.model_copy(update={"actor": actor})

    @property
    def outbox_path(self) -> Path:
        return self.home / OUTBOX_FILE

    @property
    def data_root(self) -> Path:
        return self.home / "data"

    @property
    def subject_key_path(self) -> Path:
        """The subject key file, used when MODELREG_SUBJECT_SECRET is not set."""
        return self.home / "subject.key"

    @property
    def work_root(self) -> Path:
        """Where the pipeline writes model files and downloads before they are used."""
        return self.home / "work"

    # ------------------------------------------------------------ the environment

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("MODELREG_HOME", DEFAULT_HOME))
        values: dict[str, object] = {
            "home": home,
            "registry_url": env.get("MODELREG_URL", f"sqlite:///{home}/registry.db"),
            "artifact_root": env.get("MODELREG_ARTIFACTS", str(home / "artifacts")),
            "actor": env.get("MODELREG_USER") or _default_actor(),
            "token": env.get("MODELREG_TOKEN") or None,
            "read_registry_url": env.get("MODELREG_READ_URL") or None,
            "subject_secret": env.get("MODELREG_SUBJECT_SECRET") or None,
        }
        if env.get("MODELREG_WRITE_RETRY_S"):
            values["write_retry_s"] = _seconds(
                "MODELREG_WRITE_RETRY_S", env["MODELREG_WRITE_RETRY_S"]
            )
        if env.get("MODELREG_REGIONS"):
            values["regions"] = tuple(
                r.strip() for r in env["MODELREG_REGIONS"].split(",") if r.strip()
            )
        if env.get("MODELREG_REGION_ROOTS"):
            values["region_roots"] = _parse_roots(env["MODELREG_REGION_ROOTS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class ServerConfig(BaseModel):
    """How ``modelreg server`` runs: built by the CLI, handed to each worker process."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    registry_url: str
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    feed_poll_s: float = Field(default=0.05, gt=0, le=10)
    webhooks: bool = True  # run the webhook dispatcher in this server
    webhook_max_backoff_s: float = Field(default=300.0, gt=0)
    # The MLflow API: where the bytes of the sources it reads go (a folder or s3://…;
    # None: MODELREG_ARTIFACTS), and the folders and s3:// prefixes it may read them from.
    artifact_root: str | None = None
    source_roots: tuple[str, ...] = ()
    mlflow_tracking_url: str | None = None  # resolves runs:/ and models:/m- sources
    read_registry_url: str | None = None  # a read-only replica for the server's reads

    @property
    def artifacts_at(self) -> str:
        return self.artifact_root or Settings.from_env().artifact_root

    def export(self) -> None:
        """Hand this config to the worker processes uvicorn starts (``--workers N``)."""
        os.environ[_SERVER_CONFIG] = self.model_dump_json()

    @classmethod
    def from_env(cls) -> ServerConfig:
        raw = os.environ.get(_SERVER_CONFIG)
        if raw is None:
            return cls(registry_url=Settings.from_env().registry_url)
        return cls.model_validate_json(raw)


_SERVER_CONFIG = "MODELREG_SERVER_CONFIG"


def env_value(name: str, default: str | None = None) -> str | None:
    """One environment variable, for the few settings that are not ``Settings`` fields
    (the task runner, the Dask address)."""
    return os.environ.get(name, default)


def quiet_third_party_telemetry() -> None:
    """Turn off Prefect's and Great Expectations' telemetry unless the user set it.

    Both read these before their first import, so entry points call this first;
    nothing calls it at import time.
    """
    for key, value in _QUIET:
        os.environ.setdefault(key, value)


def local_prefect(home: Path) -> None:
    """Run Prefect from ``home`` (its own database, an ephemeral API server) with its
    console logging turned down to warnings, unless the user set otherwise."""
    os.environ.setdefault("PREFECT_HOME", str(home.resolve()))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")


def _seconds(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a number of seconds, not {text!r}") from None


def _parse_roots(text: str) -> dict[str, str]:
    """``us-east=s3://bucket/prefix,eu-west=/mnt/eu`` as a mapping."""
    roots: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        region, sep, root = (part.strip() for part in item.partition("="))
        if not sep or not region or not root:
            raise InvalidInput(
                f"invalid MODELREG_REGION_ROOTS entry {item.strip()!r}: expected REGION=ROOT"
            )
        if region in roots:
            raise InvalidInput(f"MODELREG_REGION_ROOTS names region {region!r} twice")
        roots[region] = root
    return roots
