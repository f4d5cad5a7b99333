"""Settings: the one place that reads the environment.

Built at an entry point (CLI, flow, server) and passed down; nothing reads
configuration or opens a connection at import time.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.artifacts import ArtifactStore

DEFAULT_HOME = ".modelreg"
DEFAULT_REGIONS = ("us-east", "eu-west", "ap-south")


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class Settings:
    home: Path = Path(DEFAULT_HOME)
    registry_url: str = f"sqlite:///{DEFAULT_HOME}/registry.db"
    artifact_root: str = f"{DEFAULT_HOME}/artifacts"
    regions: tuple[str, ...] = DEFAULT_REGIONS
    actor: str = field(default_factory=_default_actor)
    # Where each region's artifact store lives (a folder or s3://bucket/prefix). Regions
    # left out get ``<home>/regions/<region>``; left out of the hash so Settings stays hashable.
    region_roots: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        from registry.release_models import check_region

        for region in self.regions:
            check_region(region)
        unknown = sorted(set(self.region_roots) - set(self.regions))
        if unknown:
            raise InvalidInput(
                f"region roots given for unknown regions {', '.join(unknown)}; "
                f"the regions are {', '.join(self.regions)} (MODELREG_REGIONS)"
            )
        roots = {
            r: self.region_roots.get(r) or str(self.home / "regions" / r) for r in self.regions
        }
        object.__setattr__(self, "region_roots", MappingProxyType(roots))

    def region_store(self, region: str) -> ArtifactStore:
        """The artifact store of one configured region."""
        from registry.artifacts import open_store

        root = self.region_roots.get(region)
        if root is None:
            raise InvalidInput(
                f"unknown region {region!r}; the regions are {', '.join(self.regions)}"
            )
        return open_store(root)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("MODELREG_HOME", DEFAULT_HOME))
        values: dict[str, object] = {
            "home": home,
            "registry_url": env.get("MODELREG_URL", f"sqlite:///{home}/registry.db"),
            "artifact_root": env.get("MODELREG_ARTIFACTS", str(home / "artifacts")),
            "actor": env.get("MODELREG_USER") or _default_actor(),
        }
        if env.get("MODELREG_REGIONS"):
            values["regions"] = tuple(
                r.strip() for r in env["MODELREG_REGIONS"].split(",") if r.strip()
            )
        if env.get("MODELREG_REGION_ROOTS"):
            values["region_roots"] = _parse_roots(env["MODELREG_REGION_ROOTS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


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
