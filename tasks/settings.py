"""What every task needs to find the registry: plain strings, hashable and JSON-able.

Tasks never receive a store client or a model object (Prefect hashes task inputs
for cache keys and pickles results): they receive this, and open what they need.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from registry import RegistryStore, Settings, connect, open_artifacts
from registry.artifacts import ArtifactStore

OUTBOX_FILE = "outbox.db"


class RunSettings(BaseModel):
    """The registry, artifact stores and regions a flow run works against."""

    model_config = ConfigDict(frozen=True)

    home: str
    registry_url: str
    artifact_root: str
    regions: tuple[str, ...]
    region_roots: dict[str, str]
    actor: str

    @classmethod
    def from_settings(cls, settings: Settings) -> RunSettings:
        return cls(
            home=str(settings.home),
            registry_url=settings.registry_url,
            artifact_root=settings.artifact_root,
            regions=tuple(settings.regions),
            region_roots=dict(settings.region_roots),
            actor=settings.actor,
        )

    @classmethod
    def from_env(cls) -> RunSettings:
        """What ``MODELREG_*`` says (read once, at a flow's entry point)."""
        return cls.from_settings(Settings.from_env())

    def settings(self) -> Settings:
        return Settings(
            home=Path(self.home),
            registry_url=self.registry_url,
            artifact_root=self.artifact_root,
            regions=self.regions,
            region_roots=dict(self.region_roots),
            actor=self.actor,
        )

    def connect(self) -> RegistryStore:
        """A store client; raises ``RegistryUnavailable`` when the registry is down."""
        return connect(settings=self.settings())

    def artifacts(self) -> ArtifactStore:
        return open_artifacts(self.settings())

    def region_store(self, region: str) -> ArtifactStore:
        return self.settings().region_store(region)

    @property
    def outbox_path(self) -> Path:
        return Path(self.home) / OUTBOX_FILE

    @property
    def data_root(self) -> Path:
        return Path(self.home) / "data"

    @property
    def work_root(self) -> Path:
        """Where training writes model files before they are uploaded."""
        return Path(self.home) / "work"
